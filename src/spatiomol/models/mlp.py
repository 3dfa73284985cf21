"""Single-gene-resolution multilayer perceptron on region pairs (paper §3, App. A.3).

Input of a pair ``(i, j)``: ``[f_i ‖ f_j]`` where a region's features ``f`` are its
expression vector (``g`` values, as stored in ``brain.X``, e.g. AHBA's scaled robust
sigmoid in [0, 1]) and/or its MNI centroid divided by ``coord_scale_mm`` (100 mm by
default, so centroids lie roughly in [-1, 1]; a fixed scale rather than a fitted one,
so that the same region gets the same input in every split and in null brains).

Hidden layers: ``Linear → norm → ReLU → Dropout`` for each width in ``hidden_dims``
(2–4 layers), then ``Linear → 1``; ``norm`` is ``hidden_norm``: BatchNorm1d (the paper's
and the reference code's) or LayerNorm (see `HIDDEN_NORMS`).

Symmetry: the network is evaluated on both orders, ``[f_i ‖ f_j]`` and ``[f_j ‖ f_i]``,
in one batch, and the two outputs are averaged — in prediction always, in training with
``pair_orders="averaged"`` (default; with ``"both"`` every order is a training sample of
its own, see `spatiomol.models.training`) — so ``predict(i, j) == predict(j, i)`` exactly.

Per-region first layer: the first layer is linear in ``[f_i ‖ f_j]``, ``W [f_i ‖ f_j] + b
= W_a f_i + W_b f_j + b`` with ``W = [W_a | W_b]``, so `pair_head` computes ``W_a f`` and
``W_b f`` once per *distinct* region of a batch and gathers them per pair (both orders
for free) — the same numbers as the per-pair product up to float rounding, and far fewer
multiplications when a batch of ``B`` pairs touches fewer than ``2B`` regions.
`pair_head_per_pair` is the per-pair reference (tests, ``benchmarks/neural_throughput.py``).
The SMT decoder uses the same head on region embeddings.

Variants (registry): ``mlp`` (expression), ``mlp-coords`` (expression + coordinates),
``mlp-coords-only`` (coordinates only, Table 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from torch import nn

from spatiomol.data.brain import Brain
from spatiomol.data.structural import n_structural_features, structural_features
from spatiomol.models.neural import HIDDEN_NORMS, Hyperparameter, NeuralConnectivityModel, _at_least

#: normalisation inside a hidden block. "batch": BatchNorm1d (paper, reference code); its
#: running statistics, used at prediction, lag the network on small connectomes (a handful
#: of optimiser steps per epoch) and mix in dropout's variance, and the SMT's test r then
#: swings by up to 1.0 between neighbouring epochs (docs/models_neural.md, "Decoder
#: normalisation"). "layer": LayerNorm, the same computation in training and prediction.


def hidden_block(n_in: int, n_out: int, dropout: float, norm: str = "batch") -> list[nn.Module]:
    """``Linear → norm → ReLU → Dropout``; ``norm`` one of `HIDDEN_NORMS`."""
    if norm not in HIDDEN_NORMS:
        raise ValueError(f"hidden_norm must be one of {HIDDEN_NORMS}, got {norm!r}")
    layer = nn.BatchNorm1d(n_out) if norm == "batch" else nn.LayerNorm(n_out)
    return [nn.Linear(n_in, n_out), layer, nn.ReLU(), nn.Dropout(dropout)]


def pair_head(
    body: nn.Sequential,
    region_features: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    symmetric: bool = True,
    compact: bool = False,
) -> torch.Tensor:
    """``body([f_i ‖ f_j])`` for pairs of rows of ``region_features``, first layer per region.

    Parameters
    ----------
    body : nn.Sequential
        Starts with ``nn.Linear(2 f, h)``; the rest runs on its output rows.
    region_features : (R, f) tensor
        One row per region; ``i``, ``j`` index these rows.
    i, j : (B,) int64 tensors
    symmetric : bool
        Average the outputs for ``[f_i ‖ f_j]`` and ``[f_j ‖ f_i]`` (one batch of 2B rows);
        otherwise the order given only.
    compact : bool
        ``i`` and ``j`` together use every row of ``region_features`` (e.g. the inverse of
        a ``torch.unique`` over the batch, as in `SMTNetwork.forward`): the per-batch
        ``torch.unique`` and row gather are skipped. Bit-identical to ``compact=False``
        then, since the unique rows are all rows in order.

    Returns
    -------
    (B,) tensor
        Equal to `pair_head_per_pair` on the gathered rows, up to float rounding.
    """
    first = body[0]
    n = region_features.shape[1]
    if first.in_features != 2 * n:
        raise ValueError(f"pair_head: first layer takes {first.in_features} inputs, expected 2 × {n}")
    if compact:
        rows, ii, jj = region_features, i, j
    else:
        regions, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
        rows = region_features[regions]
        ii, jj = inverse[: len(i)], inverse[len(i) :]
    left = rows @ first.weight[:, :n].T  # W_a f, (R, h)
    right = rows @ first.weight[:, n:].T  # W_b f
    hidden = left.index_select(0, ii) + right.index_select(0, jj)
    if symmetric:
        hidden = torch.cat([hidden, left.index_select(0, jj) + right.index_select(0, ii)])
    out = body[1:](hidden + first.bias).squeeze(-1)
    return 0.5 * (out[: len(i)] + out[len(i) :]) if symmetric else out


def pair_head_per_pair(
    body: nn.Sequential, f_i: torch.Tensor, f_j: torch.Tensor, symmetric: bool = True
) -> torch.Tensor:
    """Reference for `pair_head`: ``body`` on the concatenated rows ``[f_i ‖ f_j]`` of every pair."""
    rows = torch.cat([f_i, f_j], dim=1)
    if symmetric:
        rows = torch.cat([rows, torch.cat([f_j, f_i], dim=1)], dim=0)
    out = body(rows).squeeze(-1)
    return 0.5 * (out[: len(f_i)] + out[len(f_i) :]) if symmetric else out


class PairMLPNetwork(nn.Module):
    """Symmetrised MLP on concatenated region features.

    Parameters
    ----------
    n_region_features : int
        Features per region ``f`` (the input has ``2 f`` columns).
    hidden_dims : sequence of int
        Widths of the hidden layers.
    dropout : float
        Dropout rate after every hidden layer.
    norm : str
        Normalisation in every hidden layer, one of `HIDDEN_NORMS`.
    """

    def __init__(self, n_region_features: int, hidden_dims: Sequence[int], dropout: float, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * n_region_features
        for h in hidden_dims:
            layers += hidden_block(width, int(h), dropout, norm)
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(
        self, region_tensors: dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, symmetric: bool = True
    ) -> torch.Tensor:
        """Predictions for pairs ``(i, j)`` (first layer once per distinct region, `pair_head`).

        Parameters
        ----------
        region_tensors : dict
            ``"features"``: (n_regions, f) float tensor.
        i, j : (B,) int64 tensors
            Region indices.
        symmetric : bool
            Average ``f(i, j)`` and ``f(j, i)`` (default); otherwise ``f(i, j)``.

        Returns
        -------
        (B,) tensor
        """
        return pair_head(self.body, region_tensors["features"], i, j, symmetric)

    def output_layer(self) -> nn.Linear:
        """The last layer (→ 1 output), which training may start at the target mean."""
        return self.body[-1]

    def forward_per_pair(
        self, region_tensors: dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, symmetric: bool = True
    ) -> torch.Tensor:
        """Reference path: the whole network on ``[f_i ‖ f_j]`` per pair (tests/benchmark only)."""
        features = region_tensors["features"]
        return pair_head_per_pair(self.body, features[i], features[j], symmetric)


class MLP(NeuralConnectivityModel):
    """Pairwise MLP from expression and/or coordinates (scikit-learn style estimator).

    Parameters
    ----------
    use_coords : bool
        Append both regions' scaled MNI centroids to the input.
    use_expression : bool
        Use expression (False: the coordinates-only MLP of Table 3, or an SC-only MLP).
    use_structural : bool
        Append each region's structural-connectivity features (`spatiomol.data.structural`:
        Laplacian spectral embedding of ``brain.structural``, computed from the whole SC
        matrix, an input like expression; issue 27). Needs a brain with SC.
    structural_components : int
        Components of that embedding (default 10).
    structural_raw_row : bool
        Also append each region's raw SC row (scaled by the largest entry).
    hidden_dims : sequence of int
        2–4 hidden widths.
    dropout_rate : float
    hidden_norm : {"batch", "layer"}
        Normalisation in every hidden layer (`HIDDEN_NORMS`).
    learning_rate, weight_decay : float
        AdamW settings.
    batch_size : int
        Training edges per mini-batch.
    epochs : int
        Epoch budget: maximum number of epochs (exact number when no validation regions).
    patience : int
        Early-stopping patience in epochs (with validation regions).
    min_steps, max_steps : int
        Size-aware step budget: the epoch budget (and patience) is rescaled so that it
        makes at least / at most this many optimiser steps; 0 = off (default). See
        `spatiomol.models.training.training_budget`.
    early_stopping : bool
        Stop on the validation regions and refit for the chosen epoch count (True), or
        train the whole epoch budget and only monitor them (False).
    stop_metric : {"mse", "pearson"}
        Validation criterion of early stopping (`spatiomol.models.training.STOP_METRICS`).
    lr_schedule : {"plateau", "cosine", "constant"}
    refit_epochs : {"best", "budget"}
        Epochs of the refit after selection: the early-stopped count of the selection fit,
        or the whole ``epochs`` budget (`spatiomol.models.training.REFIT_EPOCHS`).
    refit_schedule : {"constant", "replay"}
        What `refit_params` hands the refit: the epoch count only (constant learning
        rate), or also the plateau schedule's halvings (``lr_drop_epochs``).
    lr_drop_epochs : sequence of int
        Epochs at whose start the learning rate halves, in a fit without validation
        regions (set by tuning from `refit_params`; empty by default).
    output_init : {"target_mean", "default"}
        Start the output layer at weight 0 and bias = the training targets' mean, so the
        fit starts as the constant predictor at the mean (default), or keep torch's
        initialisation (the paper's). See `spatiomol.models.training.start_at_target_mean`.
    clip_grad_norm : float
        Clip the gradients' global L2 norm to this before every step (0 = off; default 1.0).
    standardize_expression : bool
        Standardise each gene's expression (mean 0, SD 1 over the training regions, the
        same statistics applied at prediction) before it enters the network; False
        (default, the paper's) feeds ``brain.X`` as stored. It rescues a small SMT with a
        LayerNorm decoder and dropout that otherwise stays flat, but costs the SMT accuracy
        elsewhere (docs/models_neural.md, "Training recipe").
    batching : {"random", "region_blocks"}
    pair_orders : {"averaged", "both"}
        Training samples: one per edge with both orders averaged, or one per order.
        See `spatiomol.models.training`.
    aug_prob : float
        Maximum target-augmentation probability (needs ``brain.subjects``).
    aug_style : str
        See `spatiomol.models.augment.AUG_STYLES`.
    coord_scale_mm : float
        Centroids are divided by this (mm) before entering the network.
    device : {"auto", "cpu", "cuda"}
    num_threads : int or None
        Torch CPU threads while fitting and predicting (None: torch's setting).
    seed : int
    verbose : bool
        Show a progress bar with the loss.

    Attributes
    ----------
    network_ : PairMLPNetwork
    genes_ : tuple of str
    history_ : spatiomol.models.training.TrainingHistory
    n_parameters_ : int
    """

    config_name = "mlp"

    own_parameters = {
        "use_coords": Hyperparameter(False, ("boolean",)),
        "use_expression": Hyperparameter(True, ("boolean",)),
        "use_structural": Hyperparameter(False, ("boolean",)),
        "structural_components": Hyperparameter(10, (_at_least(Integral, 1),)),
        "structural_raw_row": Hyperparameter(False, ("boolean",)),
        "hidden_dims": Hyperparameter((512, 256, 128), (list, tuple)),
    }

    def _reads_expression(self) -> bool:
        return bool(self.use_expression)

    # ------------------------------------------------------ interpretability
    def region_embeddings(self, brain: Brain) -> np.ndarray:
        """Each region's input to the first hidden layer, ``[W_a f_i ‖ W_b f_i]``.

        The first layer maps the pair ``[f_i ‖ f_j]`` to ``W_a f_i + W_b f_j + b`` and
        predictions average both orders, so a region enters as ``W_a f_i`` (first of the
        pair) and ``W_b f_i`` (second), before the normalisation and ReLU.

        Returns
        -------
        (n_regions, 2 × first hidden width) float64 array.
        """
        if not hasattr(self, "network_"):
            raise ValueError("MLP is not fitted; fit it (or load a saved run model) first")
        brain = self._align_genes(brain) if self._reads_expression() else brain
        features = self._network_inputs(brain)["features"].double()
        weight = self.network_.body[0].weight.detach().cpu().double()
        f = features.shape[1]
        with torch.no_grad():
            return torch.cat([features @ weight[:, :f].T, features @ weight[:, f:].T], dim=1).numpy()

    def attribution_inputs(self) -> tuple[str, tuple[str, ...]]:
        if not self.use_expression:
            raise ValueError("gene attributions: this MLP reads no expression (use_expression=False)")
        return "features", ()  # coordinates, if any, come after the genes

    def _check_combinations(self) -> None:
        if not (self.use_coords or self.use_expression or self.use_structural):
            raise ValueError("MLP needs use_expression, use_coords or use_structural (got all False)")
        if not 1 <= len(self.hidden_dims) <= 4:
            raise ValueError(f"hidden_dims must list 1–4 widths, got {self.hidden_dims!r}")

    def _n_region_features(self, n_genes: int) -> int:
        structural = int(getattr(self, "n_structural_features_", 0)) if self.use_structural else 0
        return (n_genes if self.use_expression else 0) + (3 if self.use_coords else 0) + structural

    def _build_network(self, n_genes: int) -> nn.Module:
        return PairMLPNetwork(
            self._n_region_features(n_genes), self.hidden_dims, float(self.dropout_rate), self.hidden_norm
        )

    def _region_tensors(self, brain: Brain) -> dict[str, torch.Tensor]:
        parts = []
        if self.use_expression:
            parts.append(brain.X)
        if self.use_coords:
            parts.append(brain.coords / float(self.coord_scale_mm))
        if self.use_structural:
            parts.append(structural_features(brain, self.structural_components, self.structural_raw_row))
        features = np.hstack(parts).astype(np.float32)
        return {"features": torch.from_numpy(features)}

    def _prepare_brain(self, brain: Brain, train: np.ndarray) -> tuple[Brain, list[str]]:
        notes = []
        if self.use_coords:
            notes.append(f"coordinates (mm) divided by {self.coord_scale_mm} before entering the MLP")
        if self.use_structural:
            if brain.structural is None:
                structural_features(brain, self.structural_components)  # the error that names the brain
            self.n_structural_features_ = n_structural_features(
                brain.n_regions, self.structural_components, self.structural_raw_row
            )
            notes.append(
                f"structural connectivity: {self.structural_components}-component Laplacian embedding of the whole "
                f"SC matrix{' plus each raw SC row' if self.structural_raw_row else ''} (an input, never the target)"
            )
        notes.append("symmetric predictions: mean of f([x_i, x_j]) and f([x_j, x_i])")
        return brain, notes
