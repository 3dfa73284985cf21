"""What a neural fit iterates over: its training samples, epoch budget, batches and the
early-stopping tracker (see `spatiomol.models.training` for how the loop uses them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: "averaged": one sample per unordered edge, outputs of both orders averaged;
#: "both": two samples per edge, (i, j) and (j, i), one order each (reference implementation)
PAIR_ORDERS = ("averaged", "both")


# ------------------------------------------------------------------ budget
def training_samples(
    i: np.ndarray, j: np.ndarray, y: np.ndarray, pair_orders: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training samples of the unordered edges ``(i, j, y)``.

    ``"averaged"``: the edges as given (n samples); ``"both"``: ``(i, j)`` then
    ``(j, i)``, targets repeated (2n samples).
    """
    if pair_orders not in PAIR_ORDERS:
        raise ValueError(f"pair_orders must be one of {PAIR_ORDERS}, got {pair_orders!r}")
    if pair_orders == "averaged":
        return i, j, y
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([y, y])


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: ``n // B`` full batches, plus the remainder if it holds
    at least 2 samples (a 1-sample batch is skipped: BatchNorm needs two)."""
    full, rest = divmod(int(n_samples), int(batch_size))
    return full + int(rest >= 2)


def training_budget(
    epochs: int, patience: int, epoch_steps: int, min_steps: int = 0, max_steps: int = 0
) -> tuple[int, int]:
    """Epoch budget and patience after the size-aware step budget (see the module docstring).

    Parameters
    ----------
    epochs, patience : int
        As configured.
    epoch_steps : int
        Optimiser steps per epoch on this training set (`steps_per_epoch`).
    min_steps, max_steps : int
        Lower / upper bound on ``epochs × steps_per_epoch`` (0 = no bound).

    Returns
    -------
    epochs : int
        ``ceil(min_steps / s)`` if ``epochs × s < min_steps``; ``max(1, max_steps // s)``
        if ``epochs × s > max_steps``; ``epochs`` otherwise.
    patience : int
        ``max(1, round(patience × new_epochs / epochs))``.
    """
    s = max(int(epoch_steps), 1)
    budget = int(epochs)
    if min_steps and budget * s < min_steps:
        budget = math.ceil(min_steps / s)
    if max_steps and budget * s > max_steps:
        budget = max(1, int(max_steps) // s)
    if budget == epochs:
        return budget, int(patience)
    return budget, max(1, round(int(patience) * budget / int(epochs)))


# ------------------------------------------------------------------ batching
def random_batches(n_pairs: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """All pair positions ``0..n_pairs-1`` shuffled and cut into batches."""
    order = rng.permutation(n_pairs)
    return [order[s : s + batch_size] for s in range(0, n_pairs, batch_size)]


def region_block_batches(
    pair_i: np.ndarray, pair_j: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Pair positions ordered block by block (see module docstring), cut into batches.

    Every pair appears exactly once. Regions are shuffled into groups of
    ``m = round(sqrt(batch_size))``; a block holds every pair whose two regions fall in
    a given (unordered) pair of groups; blocks come in random order, pairs within a
    block in random order.
    """
    regions = np.unique(np.concatenate([pair_i, pair_j]))
    m = max(2, int(round(math.sqrt(batch_size))))
    n_groups = math.ceil(len(regions) / m)
    group_of = np.zeros(int(regions.max()) + 1, dtype=np.int64)
    group_of[rng.permutation(regions)] = np.arange(len(regions)) // m
    gi, gj = group_of[pair_i], group_of[pair_j]
    block = np.minimum(gi, gj) * n_groups + np.maximum(gi, gj)
    block_rank = rng.permutation(n_groups * n_groups)
    shuffled = rng.permutation(len(pair_i))
    order = shuffled[np.argsort(block_rank[block[shuffled]], kind="stable")]
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


# ------------------------------------------------------------ early stopping
class EarlyStopping:
    """Best-epoch tracker: the lowest validation loss, its epoch and a snapshot of the weights.

    Call `update` once per epoch with that epoch's validation loss; `should_stop` turns
    true after ``patience`` consecutive epochs without a strictly lower loss (a NaN loss
    never counts as an improvement).

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping (>= 1).

    Attributes
    ----------
    best_loss : float
        Lowest validation loss seen (``inf`` before the first finite one).
    best_epoch : int or None
        Its epoch (0-based); None until a loss improved.
    best_state : object or None
        What ``snapshot()`` returned at the best epoch (e.g. a copy of the weights).
    epochs_without_improvement : int
    """

    def __init__(self, patience: int) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience must be a positive integer, got {patience}")
        self.patience = int(patience)
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: Any = None
        self.epochs_without_improvement = 0

    def update(self, epoch: int, loss: float, snapshot: Callable[[], Any]) -> bool:
        """Record ``epoch``'s validation ``loss``; on improvement keep ``snapshot()``. → improved?"""
        if loss < self.best_loss:
            self.best_loss = float(loss)
            self.best_epoch = int(epoch)
            self.best_state = snapshot()
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience
