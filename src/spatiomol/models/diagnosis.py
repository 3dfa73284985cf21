"""Did a neural fit train? The diagnosis every fit gets (`spatiomol.models.training.train_network`).

A fit that stays (nearly) the constant predictor it starts as is *not trained*: the run's
record (`training_check`), a `NotTrainedWarning` and the report's Table 1 say so.
"""

from __future__ import annotations

from collections.abc import Sequence

#: a fit is *not trained* when its losses never fall below this fraction of the first
#: epoch's, or its predictions' SD on the training edges is below `STUCK_SD_FRACTION`
#: of the targets' SD (`training_diagnosis`)
STUCK_LOSS_FRACTION = 0.95
STUCK_SD_FRACTION = 0.10


class NotTrainedWarning(UserWarning):
    """A neural fit ended as (nearly) the constant predictor it started from (`training_diagnosis`)."""


def training_diagnosis(
    train_loss: Sequence[float], val_loss: Sequence[float], prediction_sd: float, target_sd: float
) -> list[str]:
    """Why a finished fit counts as *not trained*; empty when it trained.

    Parameters
    ----------
    train_loss, val_loss : sequence of float
        Per-epoch training loss and validation loss (MSE; empty without validation regions).
    prediction_sd, target_sd : float
        SD of the fitted network's predictions and of the targets over the training edges
        (target units, e.g. Pearson r).

    Returns
    -------
    list of str
        One reason per failed check: the training loss (and the validation loss, when
        there is one) never fell below `STUCK_LOSS_FRACTION` × its first epoch's value;
        or ``prediction_sd < STUCK_SD_FRACTION × target_sd``. A validation loss that does
        not fall while the training loss does is overfitting, not a failure to train, so
        the loss check needs both to be flat; a one-epoch fit has no trend, so only the SD
        check applies to it.
    """
    reasons = []
    curves = [("training", list(train_loss))] + ([("validation", list(val_loss))] if len(val_loss) else [])
    flat = [name for name, losses in curves if min(losses) >= STUCK_LOSS_FRACTION * losses[0]]
    if len(train_loss) >= 2 and len(flat) == len(curves):
        reasons.append(f"{' and '.join(flat)} loss never fell below {STUCK_LOSS_FRACTION} x its first epoch's")
    if target_sd > 0 and prediction_sd < STUCK_SD_FRACTION * target_sd:
        reasons.append(
            f"prediction SD on the training edges {prediction_sd:.3g} < {STUCK_SD_FRACTION} x "
            f"the targets' {target_sd:.3g}"
        )
    return reasons
