"""Distributional target-side augmentation (the paper's Algorithm 2, App. A.5).

During training, each mini-batch of training edges is, with probability ``p(e)`` at
epoch ``e``, supervised by *individual-subject* connectivity values instead of the
population mean ``Y``:

- replacement styles (``constant``, ``linear_decay``, ``linear_increase``,
  ``linear_peak``): every target of the batch is replaced by the value of that edge in
  a subject drawn at random, independently for each edge;
- curriculum-swap styles (``curriculum_swap_constant``,
  ``curriculum_swap_linear_decay``): the batch itself is swapped for a batch of *strong*
  training edges (``|y| > theta`` in the population mean, ``theta`` =
  `spatiomol.data.brain.STRONG_EDGE_R` = 0.3), drawn uniformly with replacement, whose
  targets are subject-level values as above.

Evaluation (validation loss, test metrics) is always against the population mean.
Only targets change; inputs (expression, coordinates) are never touched.

Schedules ``p(e)`` for ``e = 0 .. E-1`` with ``t = e / (E - 1)`` (``t = 0`` when
``E = 1``) and maximum probability ``p = aug_prob`` (Fig. 9):

======================================  =======================
style                                   ``p(e)``
======================================  =======================
``none``                                0
``constant``, ``curriculum_swap_constant``  ``p``
``linear_decay``, ``curriculum_swap_linear_decay``  ``p (1 - t)``
``linear_increase``                     ``p t``
``linear_peak`` (alias ``peak``)        ``p (1 - |2t - 1|)`` (0 → p at mid-training → 0)
======================================  =======================

With no subject stack (``brain.subjects is None``) augmentation is switched off, the
reason is logged (a warning the first time in a process, INFO afterwards) and kept in
`TargetAugmenter.note`.
"""

from __future__ import annotations

import logging

import numpy as np

from spatiomol.data.brain import STRONG_EDGE_R

logger = logging.getLogger(__name__)
_already_warned: set[str] = set()


def _log_off(note: str) -> None:
    """Log why augmentation is off: a warning the first time per process, then at INFO level
    (null experiments refit hundreds of models on the same data)."""
    level = logging.INFO if note in _already_warned else logging.WARNING
    _already_warned.add(note)
    logger.log(level, note)


AUG_STYLES = (
    "none",
    "constant",
    "linear_decay",
    "linear_increase",
    "linear_peak",
    "curriculum_swap_constant",
    "curriculum_swap_linear_decay",
)
_ALIASES = {"peak": "linear_peak", "linear_decrease": "linear_decay"}


def canonical_style(aug_style: str) -> str:
    """Resolve aliases (``peak`` → ``linear_peak``) and validate the style name."""
    style = _ALIASES.get(aug_style, aug_style)
    if style not in AUG_STYLES:
        raise ValueError(f"aug_style must be one of {AUG_STYLES} (or 'peak'), got {aug_style!r}")
    return style


def augmentation_probability(aug_style: str, aug_prob: float, epoch: int, n_epochs: int) -> float:
    """Probability ``p(e)`` that a batch at ``epoch`` (0-based) is augmented.

    Parameters
    ----------
    aug_style : str
        One of `AUG_STYLES` (or the alias ``"peak"``).
    aug_prob : float
        Maximum probability ``p`` in [0, 1].
    epoch, n_epochs : int
        Current epoch (0-based) and total number of epochs ``E``.

    Returns
    -------
    float
        ``p(e)`` in [0, aug_prob].
    """
    style = canonical_style(aug_style)
    if not 0.0 <= aug_prob <= 1.0:
        raise ValueError(f"aug_prob must lie in [0, 1], got {aug_prob}")
    if n_epochs < 1 or not 0 <= epoch < n_epochs:
        raise ValueError(f"epoch must lie in [0, n_epochs), got epoch={epoch}, n_epochs={n_epochs}")
    t = epoch / (n_epochs - 1) if n_epochs > 1 else 0.0
    if style == "none":
        return 0.0
    if style in ("constant", "curriculum_swap_constant"):
        return float(aug_prob)
    if style in ("linear_decay", "curriculum_swap_linear_decay"):
        return float(aug_prob * (1.0 - t))
    if style == "linear_increase":
        return float(aug_prob * t)
    return float(aug_prob * (1.0 - abs(2.0 * t - 1.0)))  # linear_peak


class TargetAugmenter:
    """Per-batch target replacement by subject-level values (Algorithm 2).

    Parameters
    ----------
    subjects : (n_subjects, n_regions, n_regions) array or None
        Individual connectomes on the scale of the population target. ``None`` disables
        augmentation (recorded in `note`).
    pair_i, pair_j : (n_pairs,) int arrays
        Training edges (region indices); batches refer to positions in these arrays.
    population_targets : (n_pairs,) float array
        Population-mean targets of the training edges (used by curriculum swaps to find
        strong edges, ``|y| > theta``).
    aug_prob : float
        Maximum augmentation probability ``p``.
    aug_style : str
        Schedule / style, see `AUG_STYLES`.
    n_epochs : int
        Length ``E`` of the schedule.
    theta : float
        Strong-edge threshold of the curriculum-swap styles (default
        `spatiomol.data.brain.STRONG_EDGE_R`, 0.3).

    Attributes
    ----------
    active : bool
        Whether any batch can be augmented.
    note : str
        Human-readable statement of what the augmenter does (or why it is off).
    batches_per_epoch, augmented_per_epoch : dict[int, int]
        Counts of batches seen and batches augmented, per epoch (realised rate).
    """

    def __init__(
        self,
        subjects: np.ndarray | None,
        pair_i: np.ndarray,
        pair_j: np.ndarray,
        population_targets: np.ndarray,
        *,
        aug_prob: float,
        aug_style: str,
        n_epochs: int,
        theta: float = STRONG_EDGE_R,
    ) -> None:
        self.style = canonical_style(aug_style)
        if not 0.0 <= aug_prob <= 1.0:
            raise ValueError(f"aug_prob must lie in [0, 1], got {aug_prob}")
        self.aug_prob = float(aug_prob)
        self.n_epochs = int(n_epochs)
        self.theta = float(theta)
        self.pair_i = np.asarray(pair_i, dtype=np.int64)
        self.pair_j = np.asarray(pair_j, dtype=np.int64)
        self.subjects = subjects
        self.swap = self.style.startswith("curriculum_swap")
        self.strong_positions = np.flatnonzero(np.abs(np.asarray(population_targets)) > self.theta)
        self.batches_per_epoch: dict[int, int] = {}
        self.augmented_per_epoch: dict[int, int] = {}

        if self.style == "none" or self.aug_prob == 0.0:
            self.active = False
            self.note = "target augmentation off (aug_prob = 0 or aug_style = 'none')"
        elif subjects is None:
            self.active = False
            self.note = (
                f"target augmentation requested (aug_style={self.style!r}, aug_prob={self.aug_prob}) "
                "but the brain has no subject stack (brain.subjects is None): augmentation is OFF, "
                "training uses the population-mean targets only"
            )
            _log_off(self.note)
        elif self.swap and self.strong_positions.size == 0:
            self.active = False
            self.note = f"curriculum swap requested but no training edge has |y| > {self.theta}: augmentation is OFF"
            _log_off(self.note)
        else:
            if subjects.ndim != 3 or subjects.shape[1] != subjects.shape[2]:
                raise ValueError(f"subjects must have shape (n_subjects, n_regions, n_regions), got {subjects.shape}")
            self.active = True
            what = (
                f"swap the batch for strong training edges (|y| > {self.theta}, "
                f"{self.strong_positions.size} edges) with subject-level targets"
                if self.swap
                else "replace every batch target by the edge's value in a random subject"
            )
            self.note = (
                f"target augmentation {self.style} (max p = {self.aug_prob}, "
                f"{subjects.shape[0]} subjects): with probability p(e) per batch, {what}"
            )

    def probability(self, epoch: int) -> float:
        """``p(e)`` for this augmenter (0 when inactive)."""
        if not self.active:
            return 0.0
        return augmentation_probability(self.style, self.aug_prob, epoch, self.n_epochs)

    def __call__(
        self, positions: np.ndarray, population_batch: np.ndarray, epoch: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Targets for one batch.

        Parameters
        ----------
        positions : (B,) int array
            Positions of the batch's edges in ``pair_i`` / ``pair_j``.
        population_batch : (B,) float array
            Their population-mean targets.
        epoch : int
            Current epoch (0-based).
        rng : numpy.random.Generator
            The training loop's generator (one draw decides the batch, further draws pick
            subjects and, for swaps, strong edges).

        Returns
        -------
        positions : (B,) int array
            The batch's edges (new ones after a curriculum swap).
        targets : (B,) float array
            Targets to train on.
        augmented : bool
            Whether this batch was augmented.
        """
        self.batches_per_epoch[epoch] = self.batches_per_epoch.get(epoch, 0) + 1
        if not self.active or rng.random() >= self.probability(epoch):
            return positions, population_batch, False
        self.augmented_per_epoch[epoch] = self.augmented_per_epoch.get(epoch, 0) + 1
        if self.swap:
            positions = self.strong_positions[rng.integers(self.strong_positions.size, size=len(positions))]
        subject = rng.integers(self.subjects.shape[0], size=len(positions))
        targets = np.asarray(self.subjects[subject, self.pair_i[positions], self.pair_j[positions]], dtype=np.float64)
        if not np.all(np.isfinite(targets)):
            bad = np.flatnonzero(~np.isfinite(targets))[0]
            raise ValueError(
                f"brain.subjects has a non-finite value at subject {subject[bad]}, edge "
                f"({self.pair_i[positions][bad]}, {self.pair_j[positions][bad]}); expected finite "
                "individual connectivity values for target augmentation"
            )
        return positions, targets, True

    def realised_rates(self) -> np.ndarray:
        """(n_epochs,) fraction of batches augmented per epoch (NaN for epochs not run)."""
        rates = np.full(self.n_epochs, np.nan)
        for epoch, n in self.batches_per_epoch.items():
            rates[epoch] = self.augmented_per_epoch.get(epoch, 0) / n
        return rates
