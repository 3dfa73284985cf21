"""The one training loop shared by every neural connectivity model (MLP, SMT).

The networks (``torch.nn.Module``) only compute; everything about optimisation lives
here:

- **Loss and optimiser**: mean squared error, ``torch.optim.AdamW``.
- **Samples**: the training edges are the unordered pairs ``i < j`` of training regions.
  ``pair_orders="averaged"`` (default) makes one sample per edge and the network averages
  its outputs for both orders, ``f(i, j)`` and ``f(j, i)``; ``pair_orders="both"`` (the
  reference implementation's way) makes two samples per edge, ``(i, j)`` and ``(j, i)``,
  each seen in one order only (twice the optimiser steps per epoch, the same work per
  epoch). Prediction and validation always average both orders, so predictions are
  symmetric either way. Networks receive the *region* tensors (expression / tokens /
  coordinates, ``n_regions`` rows, moved to the device once) plus the batch's region
  indices and gather what they need, so no ``n_pairs × features`` array is ever
  materialised.
- **Batches**: ``batching="random"`` shuffles all samples each epoch (the paper's
  protocol); ``batching="region_blocks"`` shuffles the training regions into groups of
  ``round(sqrt(batch_size))`` and visits the samples block by block (all samples between
  two groups, blocks in random order, every sample once per epoch), so a batch touches
  ~2·sqrt(B) distinct regions instead of up to 2·B — what makes the per-region
  computations (`spatiomol.models.mlp.pair_head`, the SMT's region encoder) pay
  off most.
- **Budget** (`training_budget`): ``epochs`` is the epoch budget. A size-aware step budget
  rescales it to the data: with ``min_steps > 0`` an epoch budget that would make fewer
  than ``min_steps`` optimiser steps is raised to ``ceil(min_steps / steps_per_epoch)``;
  with ``max_steps > 0`` one that would make more is lowered to
  ``max(1, max_steps // steps_per_epoch)``. ``patience`` is rescaled by the same factor
  (rounded, at least 1), so early stopping waits the same fraction of the budget. The
  paper's budgets were set for ~200 steps per epoch (UKBB, 456 regions, batch 512);
  hcp-s100 gives ~5–7. Both are 0 (off) by default: ``epochs`` and ``patience`` are
  taken as given.
- **Validation, early stopping, LR schedule**: with validation regions, the validation
  loss (MSE against the population mean on the edges within the validation regions) is
  computed after every epoch; an `EarlyStopping` tracker (also used by
  `spatiomol.models.lowrank.BilinearLowRank`) keeps the weights of the best epoch, which
  are restored at the end, and stops training after ``patience`` epochs without
  improvement. ``lr_schedule="plateau"`` (default) is ``ReduceLROnPlateau(factor=0.5,
  patience=max(1, patience // 4))`` on the validation loss; ``"cosine"`` is
  ``CosineAnnealingLR`` over the epoch budget (stepped once per epoch); ``"constant"``
  keeps the learning rate. Without validation regions the model trains for exactly the
  epoch budget and a ``plateau`` schedule either replays ``lr_drop_epochs`` (the learning
  rate halves at the start of each listed epoch; an epoch listed twice halves twice) or,
  when that is empty, falls back to constant (recorded in the history's notes).
- **Early stopping off** (``early_stopping=False``): validation regions are only
  monitored (``history.val_loss``); the run trains the whole epoch budget (a ``plateau``
  schedule becomes constant, so a refit follows the same path) and keeps its last
  weights, and `refit_params` hands the refit nothing: it trains the same budget on all
  training regions. Tuning then skips the inner fit of a lone candidate
  (`refit_uses_selection_fit`), whose result nothing would use.
- **Stopping criterion** (``stop_metric``): what early stopping, the best-epoch restore and
  the plateau schedule minimise. ``"mse"`` (default; the paper's) is the validation MSE;
  ``"pearson"`` is ``1 − r`` over the validation edges. On a small connectome the MSE of
  a barely trained network, whose near-constant output sits near the target mean, can be
  the lowest of a run; early stopping then keeps epoch 0 and the refit trains one epoch
  (docs/models_neural.md, "Selecting the epoch count"). ``1 − r`` ignores the output's
  offset and scale, as the reported test metric does.
- **Refit**: with ``refit_epochs="best"``, `NeuralConnectivityModel.refit_params` hands
  tuning the epoch count early stopping chose (``best_epoch + 1``) and, with ``refit_schedule="replay"``, the epochs at
  which the plateau schedule halved the learning rate up to then, so the refit on all
  training regions follows the same learning-rate path instead of a constant rate. With
  ``refit_epochs="budget"`` it hands nothing: early stopping only scores candidates, and
  the refit trains the whole epoch budget (an epoch count chosen on a handful of
  validation regions is noise on small connectomes; docs/models_neural.md).
- **Target-side augmentation**: a `spatiomol.models.augment.TargetAugmenter` is applied
  per batch (built by the caller for the training samples and the epoch budget).
- **Randomness**: a ``numpy.random.Generator`` seeded with ``seed`` orders the batches and
  drives augmentation; parameter initialisation and dropout use torch's default
  generator, seeded with ``seed`` inside ``torch.random.fork_rng`` so the caller's global
  RNG state is left untouched. On CPU, ``torch.use_deterministic_algorithms(True)`` is on
  during training (restored afterwards): same seed → same numbers.
- **Threads**: ``num_threads`` (estimator hyperparameter, default 1) is the number of
  torch CPU threads while fitting and predicting (restored afterwards). These networks
  run many small matrix products per second; on a CPU shared with other jobs, extra
  threads mostly wait for one another (``benchmarks/neural_throughput.py`` measures it),
  and a fixed count also keeps CPU results independent of the machine's core count
  (the thread count changes float rounding). ``None`` keeps torch's setting.
- **Device**: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
  Everything is moved with ``.to(device)``; results come back with ``.cpu()``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from spatiomol.models.augment import TargetAugmenter
from spatiomol.models.batching import (
    PAIR_ORDERS,
    EarlyStopping,
    random_batches,
    region_block_batches,
    steps_per_epoch,
    training_budget,
    training_samples,
)
from spatiomol.models.diagnosis import NotTrainedWarning, training_diagnosis

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("plateau", "cosine", "constant")
BATCHINGS = ("random", "region_blocks")
#: "constant": the refit runs at the initial learning rate; "replay": it repeats the
#: selection run's plateau halvings (see `NeuralConnectivityModel.refit_params`)
REFIT_SCHEDULES = ("constant", "replay")
#: "best": the refit trains the early-stopped epoch count; "budget": the whole epoch budget
REFIT_EPOCHS = ("best", "budget")
#: validation criterion of early stopping: "mse", or "pearson" (1 − Pearson r)
STOP_METRICS = ("mse", "pearson")
#: factor of every learning-rate drop (ReduceLROnPlateau and its replay in the refit)
LR_DROP_FACTOR = 0.5
#: "target_mean": the output layer starts at weight 0 and bias = the training targets'
#: mean (a constant predictor at the mean, so the first gradients are not the random
#: offset's); "default": torch's initialisation of that layer (the paper's)
OUTPUT_INITS = ("target_mean", "default")
SAVE_FORMAT = "spatiomol-neural-model/1"
#: pairs per forward pass at prediction time (memory, not numbers: predictions are per pair)
PREDICTION_CHUNK_PAIRS = 8192


@dataclass(frozen=True)
class TrainingSettings:
    """Optimisation settings of one training run (see the module docstring)."""

    learning_rate: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int
    lr_schedule: str = "plateau"
    batching: str = "random"
    device: torch.device = torch.device("cpu")
    seed: int = 0
    verbose: bool = False
    prediction_batch_size: int = PREDICTION_CHUNK_PAIRS
    pair_orders: str = "averaged"
    min_steps: int = 0
    max_steps: int = 0
    lr_drop_epochs: tuple[int, ...] = ()
    stop_metric: str = "mse"
    early_stopping: bool = True
    output_init: str = "target_mean"
    clip_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if self.output_init not in OUTPUT_INITS:
            raise ValueError(f"output_init must be one of {OUTPUT_INITS}, got {self.output_init!r}")
        if not float(self.clip_grad_norm) >= 0:
            raise ValueError(f"clip_grad_norm must be >= 0 (0 = off), got {self.clip_grad_norm!r}")
        if self.stop_metric not in STOP_METRICS:
            raise ValueError(f"stop_metric must be one of {STOP_METRICS}, got {self.stop_metric!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {BATCHINGS}, got {self.batching!r}")
        if self.pair_orders not in PAIR_ORDERS:
            raise ValueError(f"pair_orders must be one of {PAIR_ORDERS}, got {self.pair_orders!r}")
        for name in ("batch_size", "epochs", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("min_steps", "max_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be a non-negative integer (0 = off), got {getattr(self, name)}")
        if self.min_steps and self.max_steps and self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        if any(int(e) < 1 for e in self.lr_drop_epochs):
            raise ValueError(f"lr_drop_epochs must list epochs >= 1 (0-based epoch indices), got {self.lr_drop_epochs}")
        if int(self.batch_size) < 2:  # BatchNorm needs two samples; a 1-pair batch would be skipped
            raise ValueError(f"batch_size must be at least 2 pairs, got {self.batch_size}")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")


@dataclass
class TrainingHistory:
    """What happened during training: per-epoch losses (MSE, target units²), LR, notes.

    ``val_loss`` is the validation MSE; ``val_criterion`` what early stopping minimised
    (the MSE again, or ``1 − r`` with ``stop_metric="pearson"``).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_criterion: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    augmented_fraction: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    epoch_budget: int = 0
    patience: int = 0
    steps_per_epoch: int = 0
    steps: int = 0
    not_trained: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "val_criterion": list(self.val_criterion),
            "learning_rate": list(self.learning_rate),
            "augmented_fraction": list(self.augmented_fraction),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "epoch_budget": self.epoch_budget,
            "patience": self.patience,
            "steps_per_epoch": self.steps_per_epoch,
            "steps": self.steps,
            "not_trained": list(self.not_trained),
        }

    def lr_drop_epochs(self, through: int | None = None) -> list[int]:
        """Epochs (0-based) at whose start the learning rate dropped, one entry per halving.

        An epoch whose rate is a quarter of the previous one appears twice. ``through``
        keeps only epochs ``<= through`` (e.g. the best epoch, for a refit that stops there).
        """
        drops: list[int] = []
        rates = self.learning_rate
        for epoch in range(1, len(rates)):
            if through is not None and epoch > through:
                break
            if rates[epoch] < rates[epoch - 1]:
                halvings = round(math.log(rates[epoch - 1] / rates[epoch]) / math.log(1 / LR_DROP_FACTOR))
                drops += [epoch] * max(1, halvings)
        return drops


# ------------------------------------------------------------- train/predict
def predict_network(
    network: nn.Module,
    region_tensors: dict[str, torch.Tensor],
    i: np.ndarray,
    j: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = PREDICTION_CHUNK_PAIRS,
) -> np.ndarray:
    """Predictions of ``network`` for pairs ``(i[k], j[k])`` in eval mode, as float64 numpy.

    Networks that expose ``encode_regions`` and ``decode_indexed`` (the SMT) encode every
    distinct region once and decode pairs in chunks; others run on chunks of pairs.
    Predictions average both orders (symmetric). ``region_tensors`` must already live
    on ``device``.
    """
    network.eval()
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.empty(len(i), dtype=np.float64)
    if len(i) == 0:
        return out
    with torch.inference_mode():  # like no_grad, minus autograd's version counters (same numbers)
        if hasattr(network, "encode_regions") and hasattr(network, "decode_indexed"):
            needed, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
            z = network.encode_regions(region_tensors, torch.as_tensor(needed, device=device))
            inv = torch.as_tensor(inverse, device=device)
            zi_all, zj_all = inv[: len(i)], inv[len(i) :]
            for s in range(0, len(i), batch_size):
                pred = network.decode_indexed(z, zi_all[s : s + batch_size], zj_all[s : s + batch_size])
                out[s : s + len(pred)] = pred.float().cpu().numpy()
        else:
            for s in range(0, len(i), batch_size):
                it = torch.as_tensor(i[s : s + batch_size], device=device)
                jt = torch.as_tensor(j[s : s + batch_size], device=device)
                out[s : s + len(it)] = network(region_tensors, it, jt).float().cpu().numpy()
    return out


def train_epoch(
    network: nn.Module,
    tensors: dict[str, torch.Tensor],
    train_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    optimizer: torch.optim.Optimizer,
    settings: TrainingSettings,
    epoch: int,
    rng: np.random.Generator,
    augmenter: TargetAugmenter | None = None,
) -> tuple[float, float, int]:
    """One pass over the training samples in mini-batches (one optimiser step per batch).

    Parameters
    ----------
    network, tensors :
        As in `train_network` (``tensors`` already on ``settings.device``).
    train_pairs : tuple of (n,) arrays
        The training *samples* (`training_samples`): region indices ``i``, ``j`` and
        population-mean targets ``y``.
    optimizer : torch.optim.Optimizer
    settings : TrainingSettings
        ``batch_size``, ``batching``, ``pair_orders`` and ``device`` are used.
    epoch : int
        0-based epoch (drives the augmentation schedule).
    rng : numpy.random.Generator
        Orders the batches and drives augmentation; advanced in place.
    augmenter : TargetAugmenter, optional
        Built on the same samples.

    Returns
    -------
    mean_loss : float
        Mean training MSE over the samples seen (target units²).
    augmented_fraction : float
        Fraction of this epoch's batches whose targets were augmented.
    steps : int
        Optimiser steps taken.
    """
    device = settings.device
    symmetric = settings.pair_orders == "averaged"
    train_i, train_j, train_y = train_pairs
    network.train()
    if settings.batching == "random":
        batches = random_batches(len(train_i), settings.batch_size, rng)
    else:
        batches = region_block_batches(train_i, train_j, settings.batch_size, rng)
    loss_sum = torch.zeros((), device=device)
    n_seen = 0
    n_augmented = 0
    steps = 0
    for positions in batches:
        if len(positions) < 2:  # BatchNorm needs two samples; one pair skipped this epoch
            continue
        targets = train_y[positions]
        if augmenter is not None:
            positions, targets, augmented = augmenter(positions, targets, epoch, rng)
            n_augmented += int(augmented)
        it = torch.as_tensor(train_i[positions], device=device)
        jt = torch.as_tensor(train_j[positions], device=device)
        yt = torch.as_tensor(targets, dtype=torch.float32, device=device)
        loss = nn.functional.mse_loss(network(tensors, it, jt, symmetric=symmetric), yt)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.clip_grad_norm > 0:
            nn.utils.clip_grad_norm_(network.parameters(), settings.clip_grad_norm, foreach=True)
        optimizer.step()
        steps += 1
        loss_sum += loss.detach() * len(positions)
        n_seen += len(positions)
    return float(loss_sum.cpu()) / max(n_seen, 1), n_augmented / max(len(batches), 1), steps


#: builds the augmenter for the training samples ``(i, j, y)`` and the epoch budget
AugmenterFactory = Callable[[np.ndarray, np.ndarray, np.ndarray, int], TargetAugmenter]


def train_network(
    network: nn.Module,
    region_tensors: dict[str, torch.Tensor],
    train_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: TrainingSettings,
    *,
    val_pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    make_augmenter: AugmenterFactory | None = None,
) -> TrainingHistory:
    """Train ``network`` in place on the unordered edges ``train_pairs = (i, j, y)``.

    Samples by ``settings.pair_orders`` (`training_samples`), budget by `training_budget`,
    epochs by `train_epoch`; with validation pairs an `EarlyStopping` tracker keeps the best
    epoch's weights (restored at the end). Every fit ends with `training_diagnosis`.

    Parameters
    ----------
    network : nn.Module
        ``network(region_tensors, i, j, symmetric=True) -> (B,)`` predictions (i, j:
        int64 index tensors; ``symmetric``: average both orders).
    region_tensors : dict of str → Tensor
        Per-region inputs (rows = regions of the brain); moved to ``settings.device``.
    train_pairs : tuple of (n,) arrays
        Region indices ``i``, ``j`` and population-mean targets ``y`` of the training edges.
    settings : TrainingSettings
    val_pairs : tuple of (m,) arrays, optional
        Validation edges and targets: early stopping, plateau schedule, best-epoch restore.
    make_augmenter : callable, optional
        ``make_augmenter(i, j, y, epoch_budget)`` → `TargetAugmenter` (None: ``y`` only).

    Returns
    -------
    TrainingHistory
    """
    start = time.perf_counter()
    device = settings.device
    history = TrainingHistory()
    network.to(device)
    tensors = {k: v.to(device) for k, v in region_tensors.items()}
    train_pairs = tuple(np.asarray(a) for a in train_pairs)
    if not np.all(np.isfinite(train_pairs[2])):
        raise ValueError("training targets (brain.Y on training edges) contain NaN/inf; expected finite values")
    samples = training_samples(*train_pairs, settings.pair_orders)
    epochs, patience = _budget(settings, len(samples[0]), history)
    rng = np.random.default_rng(settings.seed)
    augmenter = make_augmenter(*samples, epochs) if make_augmenter is not None else None
    if settings.output_init == "target_mean":
        start_at_target_mean(network, float(np.mean(train_pairs[2])))
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay, foreach=True
    )
    stopping = val_pairs is not None and settings.early_stopping
    schedule, scheduler, drops = _lr_schedule(settings, optimizer, val_pairs, stopping, epochs, patience, history)
    if augmenter is not None:
        history.notes.append(augmenter.note)

    tracker = EarlyStopping(patience)
    bar = tqdm(range(epochs), desc="training", disable=not settings.verbose, leave=False)
    for epoch in bar:
        for group in optimizer.param_groups:  # a replayed plateau schedule's halvings
            group["lr"] *= LR_DROP_FACTOR ** drops.get(epoch, 0)
        train_loss, *epoch_record = train_epoch(network, tensors, samples, optimizer, settings, epoch, rng, augmenter)
        _record_epoch(history, epoch, train_loss, *epoch_record, optimizer.param_groups[0]["lr"])
        postfix, criterion = {"loss": f"{train_loss:.4g}"}, None
        if val_pairs is not None:
            criterion = _validation_epoch(network, tensors, val_pairs, settings, history)
            postfix["val"] = f"{history.val_loss[-1]:.4g}"
            if stopping:
                tracker.update(epoch, criterion, lambda: _snapshot(network))
                history.best_epoch = tracker.best_epoch
        _step_schedule(schedule, scheduler, criterion)
        bar.set_postfix(postfix)
        if stopping and tracker.should_stop:
            history.notes.append(f"early stop after epoch {epoch} (best epoch {history.best_epoch})")
            break
    if tracker.best_state is not None:
        network.load_state_dict(tracker.best_state)
    _diagnose(network.eval(), tensors, train_pairs, settings, history)
    history.seconds = time.perf_counter() - start
    return history


def _snapshot(network: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the network's weights (the best epoch's, restored at the end)."""
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def _step_schedule(schedule: str, scheduler: Any, criterion: float | None) -> None:
    """End-of-epoch step of the learning-rate schedule: the plateau schedule on the
    validation criterion, the cosine schedule every epoch, the others never."""
    if scheduler is not None and schedule == "plateau" and criterion is not None:
        scheduler.step(criterion)
    elif scheduler is not None and schedule == "cosine":
        scheduler.step()


def _record_epoch(
    history: TrainingHistory, epoch: int, train_loss: float, augmented_fraction: float, steps: int, rate: float
) -> None:
    """Append epoch ``epoch``'s training loss, augmented fraction and learning rate to ``history``."""
    history.steps += steps
    history.train_loss.append(train_loss)
    history.augmented_fraction.append(augmented_fraction)
    history.learning_rate.append(rate)
    history.epochs_run = epoch + 1


def _budget(settings: TrainingSettings, n_samples: int, history: TrainingHistory) -> tuple[int, int]:
    """Epoch budget and patience of this fit (`training_budget`), recorded in ``history``."""
    history.steps_per_epoch = steps_per_epoch(n_samples, settings.batch_size)
    epochs, patience = training_budget(
        settings.epochs, settings.patience, history.steps_per_epoch, settings.min_steps, settings.max_steps
    )
    history.epoch_budget, history.patience = epochs, patience
    if (epochs, patience) != (settings.epochs, settings.patience):
        history.notes.append(
            f"step budget: {settings.epochs} epochs × {history.steps_per_epoch} steps outside "
            f"[{settings.min_steps or '-'}, {settings.max_steps or '-'}] steps → {epochs} epochs, patience {patience}"
        )
    if settings.pair_orders == "both":
        history.notes.append("both orders of every training edge are separate samples")
    return epochs, patience


def _lr_schedule(
    settings: TrainingSettings,
    optimizer: torch.optim.Optimizer,
    val_pairs: Any,
    stopping: bool,
    epochs: int,
    patience: int,
    history: TrainingHistory,
) -> tuple[str, Any, dict[int, int]]:
    """The schedule a fit actually runs (module docstring) → (name, torch scheduler or
    None, {epoch: halvings at its start} of a replayed schedule); notes in ``history``."""
    schedule = settings.lr_schedule
    drops: dict[int, int] = {}
    if settings.lr_drop_epochs:
        if val_pairs is not None or schedule != "plateau":
            raise ValueError(
                "lr_drop_epochs replays a plateau schedule in a refit without validation regions; "
                f"got lr_schedule={schedule!r} and {'validation regions' if val_pairs is not None else 'none'}"
            )
        for e in settings.lr_drop_epochs:
            drops[int(e)] = drops.get(int(e), 0) + 1
        schedule = "replay"
        history.notes.append(f"learning rate halved at the start of epochs {sorted(settings.lr_drop_epochs)} (replay)")
    elif schedule == "plateau" and not stopping:
        schedule = "constant"
        history.notes.append(
            "validation regions only monitored (early_stopping=False): fixed number of epochs, constant learning rate"
            if val_pairs is not None
            else "no validation regions: fixed number of epochs, constant learning rate"
        )
    scheduler: Any = None
    if schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=LR_DROP_FACTOR, patience=max(1, patience // 4)
        )
    elif schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return schedule, scheduler, drops


def _validation_epoch(
    network: nn.Module,
    tensors: dict[str, torch.Tensor],
    val_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: TrainingSettings,
    history: TrainingHistory,
) -> float:
    """Validation MSE and stopping criterion of the epoch just trained (appended to ``history``)."""
    vi, vj, vy = val_pairs
    pred = predict_network(network, tensors, vi, vj, device=settings.device, batch_size=settings.prediction_batch_size)
    val_loss = float(np.mean((pred - vy) ** 2))
    criterion = val_loss if settings.stop_metric == "mse" else 1.0 - _pearson(pred, vy)
    history.val_loss.append(val_loss)
    history.val_criterion.append(criterion)
    return criterion


def _diagnose(
    network: nn.Module,
    tensors: dict[str, torch.Tensor],
    train_pairs: tuple[np.ndarray, ...],
    settings: TrainingSettings,
    history: TrainingHistory,
) -> None:
    """`training_diagnosis` of the finished fit; a note and a `NotTrainedWarning` when it did not train."""
    ti, tj, ty = train_pairs
    fitted = predict_network(
        network, tensors, ti, tj, device=settings.device, batch_size=settings.prediction_batch_size
    )
    history.not_trained = training_diagnosis(
        history.train_loss, history.val_loss, float(np.std(fitted)), float(np.std(ty))
    )
    if history.not_trained:
        message = "neural fit did not train: " + "; ".join(history.not_trained)
        history.notes.append(message)
        warnings.warn(message, NotTrainedWarning, stacklevel=3)


def start_at_target_mean(network: nn.Module, target_mean: float) -> None:
    """Zero the weights of ``network.output_layer()`` and set its bias to ``target_mean``.

    The network then starts as the constant predictor at the training targets' mean: the
    first gradients carry the targets' structure instead of a random output offset (which,
    20–200× larger than later gradients, inflates AdamW's second-moment estimate for ~1,000
    steps and can leave the fit stuck; docs/models_neural.md, "Training recipe").
    """
    layer = network.output_layer()
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(target_mean)


def _pearson(prediction: np.ndarray, target: np.ndarray) -> float:
    """Pearson r; NaN (never an improvement) when either side is constant."""
    p, t = prediction - prediction.mean(), target - target.mean()
    denominator = float(np.sqrt(np.dot(p, p) * np.dot(t, t)))
    return float(np.dot(p, t) / denominator) if denominator > 0 else math.nan
