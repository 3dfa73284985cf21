"""The neural estimators' shared plumbing: one definition of their training hyperparameters,
fit / predict / save / load, and the hooks `spatiomol.explain` uses.

Hyperparameters
---------------
A neural model declares its own hyperparameters (``own_parameters``: name →
`Hyperparameter`) and any default of a shared training hyperparameter it changes
(``training_defaults``); `TRAINING_PARAMETERS` holds the training hyperparameters every
neural model takes, each default and constraint written once. `NeuralConnectivityModel`
builds each subclass's keyword-only ``__init__`` (its signature is what scikit-learn's
``get_params`` / ``clone`` read) and ``_parameter_constraints`` (scikit-learn's
declarative constraints, checked by `ConnectivityModel._validate_params` before a fit and
on load) from these tables, so a default has one home: the signature. The model YAML files
hold only search grids.

Hooks
-----
A subclass implements ``_build_network(n_genes)`` (an ``nn.Module`` exposing
``output_layer()``), ``_region_tensors(brain)`` (per-region input tensors) and optionally
``_prepare_brain``, ``_after_build`` and ``_check_combinations``. For `spatiomol.explain`:
``region_embeddings(brain)`` and ``attribution_inputs()`` (the region-tensor key whose
first ``n_genes`` flattened values per region are the genes, and the keys passed along);
``attention_maps`` where there is attention.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.models.augment import AUG_STYLES, TargetAugmenter, canonical_style
from spatiomol.models.base import ConnectivityModel
from spatiomol.models.device import resolve_device, seeded_torch
from spatiomol.models.training import (
    BATCHINGS,
    LR_SCHEDULES,
    OUTPUT_INITS,
    PAIR_ORDERS,
    PREDICTION_CHUNK_PAIRS,
    REFIT_EPOCHS,
    REFIT_SCHEDULES,
    STOP_METRICS,
    TrainingHistory,
    TrainingSettings,
    predict_network,
    train_network,
)

SAVE_FORMAT = "spatiomol-neural-model/1"
#: normalisation inside a hidden block (see `spatiomol.models.mlp.HIDDEN_NORMS`)
HIDDEN_NORMS: tuple[str, ...] = ("batch", "layer")


@dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter's default and its scikit-learn constraints (any one must hold)."""

    default: Any
    constraints: tuple[Any, ...]


def _positive(kind: type) -> Interval:
    return Interval(kind, 0, None, closed="neither")


def _at_least(kind: type, low: float) -> Interval:
    return Interval(kind, low, None, closed="left")


def _one_of(options: tuple[str, ...]) -> StrOptions:
    return StrOptions(set(options))


#: the training hyperparameters every neural model takes: default and constraints, once
#: (see `spatiomol.models.training` for what each does; a model may change a default
#: through ``training_defaults``)
TRAINING_PARAMETERS: dict[str, Hyperparameter] = {
    "dropout_rate": Hyperparameter(0.15, (Interval(Real, 0, 1, closed="left"),)),
    "hidden_norm": Hyperparameter("batch", (_one_of(HIDDEN_NORMS),)),
    "learning_rate": Hyperparameter(1e-4, (_positive(Real),)),
    "weight_decay": Hyperparameter(1e-4, (_at_least(Real, 0),)),
    "batch_size": Hyperparameter(256, (_at_least(Integral, 2),)),
    "epochs": Hyperparameter(150, (_at_least(Integral, 1),)),
    "patience": Hyperparameter(20, (_at_least(Integral, 1),)),
    "min_steps": Hyperparameter(0, (_at_least(Integral, 0),)),
    "max_steps": Hyperparameter(0, (_at_least(Integral, 0),)),
    "early_stopping": Hyperparameter(True, ("boolean",)),
    "stop_metric": Hyperparameter("mse", (_one_of(STOP_METRICS),)),
    "lr_schedule": Hyperparameter("plateau", (_one_of(LR_SCHEDULES),)),
    "refit_epochs": Hyperparameter("budget", (_one_of(REFIT_EPOCHS),)),
    "refit_schedule": Hyperparameter("constant", (_one_of(REFIT_SCHEDULES),)),
    "lr_drop_epochs": Hyperparameter((), (list, tuple)),
    "output_init": Hyperparameter("target_mean", (_one_of(OUTPUT_INITS),)),
    "clip_grad_norm": Hyperparameter(1.0, (_at_least(Real, 0),)),
    "standardize_expression": Hyperparameter(False, ("boolean",)),
    "batching": Hyperparameter("random", (_one_of(BATCHINGS),)),
    "pair_orders": Hyperparameter("averaged", (_one_of(PAIR_ORDERS),)),
    "aug_prob": Hyperparameter(0.0, (Interval(Real, 0, 1, closed="both"),)),
    "aug_style": Hyperparameter("linear_decay", (_one_of((*AUG_STYLES, "peak")),)),
    "coord_scale_mm": Hyperparameter(100.0, (_positive(Real),)),
    "device": Hyperparameter("auto", (str,)),
    "num_threads": Hyperparameter(1, (_at_least(Integral, 1), None)),
    "seed": Hyperparameter(0, (Integral,)),
    "verbose": Hyperparameter(False, ("boolean",)),
}


def _keyword_init(parameters: Mapping[str, Any], owner: str) -> Any:
    """A keyword-only ``__init__`` storing each hyperparameter as an attribute (scikit-learn's rule)."""

    def __init__(self, **hyperparameters: Any) -> None:
        unknown = sorted(set(hyperparameters) - set(parameters))
        if unknown:
            raise TypeError(f"{owner}() got unexpected keyword argument(s) {unknown}; expected {sorted(parameters)}")
        for name, default in parameters.items():
            setattr(self, name, hyperparameters.get(name, default))

    kinds = inspect.Parameter
    __init__.__signature__ = inspect.Signature(
        [kinds("self", kinds.POSITIONAL_OR_KEYWORD)]
        + [kinds(name, kinds.KEYWORD_ONLY, default=default) for name, default in parameters.items()]
    )
    __init__.__qualname__ = f"{owner}.__init__"
    return __init__


class NeuralConnectivityModel(ConnectivityModel):
    """Fit/predict/save/load shared by the neural models; subclasses define the network.

    A concrete subclass sets ``own_parameters`` (and, where it differs, ``training_defaults``);
    its ``__init__`` and ``_parameter_constraints`` are built from them and
    `TRAINING_PARAMETERS` (module docstring).

    Subclasses must set the common hyperparameters ``learning_rate, weight_decay,
    batch_size, epochs, patience, min_steps, max_steps, early_stopping, stop_metric, lr_schedule, refit_epochs,
    refit_schedule,
    lr_drop_epochs, output_init, clip_grad_norm, standardize_expression, batching, pair_orders,
    aug_prob, aug_style, device, num_threads, seed, verbose`` in ``__init__`` and implement
    `_build_network`, `_region_tensors` and (optionally) `_prepare_brain` / `_after_build`. The network must expose
    ``output_layer()`` (its last ``nn.Linear``, one output) for ``output_init``.

    Fitted attributes: ``network_`` (nn.Module), ``genes_`` (gene order the network
    reads), ``device_``, ``history_`` (`TrainingHistory`), ``notes_`` (list of str,
    including the augmentation note), ``n_parameters_``, ``expression_center_`` and
    ``expression_scale_`` ((n_genes,) arrays, or None without ``standardize_expression``).
    The network reads its inputs through `_network_inputs` (the standardisation applied),
    never `_region_tensors` directly.
    """

    #: the model's own hyperparameters (name → `Hyperparameter`), before the training ones
    own_parameters: ClassVar[dict[str, Hyperparameter]] = {}
    #: defaults of `TRAINING_PARAMETERS` that differ for this model
    training_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "own_parameters" not in cls.__dict__:
            return
        unknown = sorted(set(cls.training_defaults) - set(TRAINING_PARAMETERS))
        if unknown:
            raise TypeError(f"{cls.__name__}.training_defaults: {unknown} are not training hyperparameters")
        shared = {
            name: Hyperparameter(cls.training_defaults.get(name, p.default), p.constraints)
            for name, p in TRAINING_PARAMETERS.items()
        }
        table = {**cls.own_parameters, **shared}
        cls.__init__ = _keyword_init({name: p.default for name, p in table.items()}, cls.__name__)
        cls._parameter_constraints = {name: list(p.constraints) for name, p in table.items()}

    # ------------------------------------------------------ explain hooks
    def region_embeddings(self, brain: Brain) -> np.ndarray:
        """(n_regions, p) per-region representation the network pairs (`spatiomol.explain`)."""
        raise NotImplementedError(f"{type(self).__name__} defines no region embeddings")

    def attribution_inputs(self) -> tuple[str, tuple[str, ...]]:
        """``(key, extra_keys)``: the region tensor whose first ``n_genes`` flattened values
        per region are the genes (in ``genes_`` order), and the other region tensors the
        network reads, passed along unchanged (`spatiomol.explain.gene_attributions`)."""
        raise NotImplementedError(f"{type(self).__name__} defines no gene attribution inputs")

    # ----------------------------------------------------- subclass hooks
    def _build_network(self, n_genes: int) -> nn.Module:
        raise NotImplementedError

    def _region_tensors(self, brain: Brain) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _prepare_brain(self, brain: Brain, train: np.ndarray) -> tuple[Brain, list[str]]:
        """Return the brain the network trains on (e.g. genes reordered) and notes."""
        return brain, []

    def _after_build(self, n_genes: int) -> list[str]:
        """Set architecture-derived attributes after the network is built; return notes."""
        return []

    # -------------------------------------------------------- internals
    def _training_settings(self, device: torch.device) -> TrainingSettings:
        return TrainingSettings(
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            batch_size=int(self.batch_size),
            epochs=int(self.epochs),
            patience=int(self.patience),
            lr_schedule=self.lr_schedule,
            batching=self.batching,
            device=device,
            seed=int(self.seed),
            verbose=bool(self.verbose),
            pair_orders=self.pair_orders,
            min_steps=int(self.min_steps),
            max_steps=int(self.max_steps),
            lr_drop_epochs=tuple(int(e) for e in self.lr_drop_epochs),
            stop_metric=self.stop_metric,
            early_stopping=bool(self.early_stopping),
            output_init=self.output_init,
            clip_grad_norm=float(self.clip_grad_norm),
        )

    def _torch_context(self) -> Any:
        """Seeded, deterministic torch with ``num_threads`` CPU threads (all restored on exit)."""
        return seeded_torch(self.seed, self.device_, num_threads=self.num_threads)

    def _check_expression(self, brain: Brain) -> None:
        if not self._reads_expression():
            return
        bad = np.flatnonzero(~np.isfinite(brain.X).all(axis=1))
        if bad.size:
            labels = [str(x) for x in brain.labels[bad][:5]]
            raise ValueError(
                f"brain {brain.name!r}: expression matrix X has NaN/inf in {bad.size} regions "
                f"(e.g. {labels}); expected finite values — impute missing expression first "
                "(spatiomol.data.impute, or load_dataset(..., missing='mirror-interpolate'))"
            )

    def _network_inputs(self, brain: Brain) -> dict[str, torch.Tensor]:
        """The network's region tensors of ``brain`` (genes in the fitted order), its
        expression standardised with the training regions' statistics when the fit did so
        (``standardize_expression``)."""
        center = getattr(self, "expression_center_", None)
        if center is not None and self._reads_expression():
            brain = brain.replace(X=(brain.X - center) / self.expression_scale_)
        return self._region_tensors(brain)

    def _device_tensors(self, brain: Brain) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device_) for k, v in self._network_inputs(brain).items()}

    def _fit_expression_scaling(self, brain: Brain, train: np.ndarray) -> list[str]:
        """Set ``expression_center_`` / ``expression_scale_`` (per gene, over the training
        regions; a constant gene keeps scale 1), or None when not standardising; → notes."""
        self.expression_center_ = self.expression_scale_ = None
        if not (self.standardize_expression and self._reads_expression()):
            return []
        X = brain.X[train]
        scale = X.std(axis=0)
        self.expression_center_ = X.mean(axis=0)
        self.expression_scale_ = np.where(scale > 0, scale, 1.0)
        return [f"expression standardised per gene (mean 0, SD 1 over the {len(train)} training regions)"]

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        # hyperparameters were validated by `ConnectivityModel.fit` (`_validate_params`)
        canonical_style(self.aug_style)
        brain, notes = self._prepare_brain(brain, train)
        self._check_expression(brain)
        self.genes_ = tuple(brain.genes)
        self.device_ = resolve_device(self.device)
        settings = self._training_settings(self.device_)
        i, j, y = self.training_pairs(brain, train)
        val_pairs = None
        if val is not None and len(val) >= 2:
            vi, vj = pairs_within(val)
            val_pairs = (vi, vj, brain.targets(vi, vj))
        augmenters: list[TargetAugmenter] = []

        def make_augmenter(si: np.ndarray, sj: np.ndarray, sy: np.ndarray, n_epochs: int) -> TargetAugmenter:
            augmenters.append(
                TargetAugmenter(
                    brain.subjects,
                    si,
                    sj,
                    sy,
                    aug_prob=float(self.aug_prob),
                    aug_style=self.aug_style,
                    n_epochs=n_epochs,
                )
            )
            return augmenters[-1]

        notes += self._fit_expression_scaling(brain, train)
        tensors = self._network_inputs(brain)
        with self._torch_context():
            self.network_ = self._build_network(brain.n_genes)
            notes += self._after_build(brain.n_genes)
            self.history_ = train_network(
                self.network_, tensors, (i, j, y), settings, val_pairs=val_pairs, make_augmenter=make_augmenter
            )
        self.augmentation_note_ = augmenters[0].note
        self.notes_ = notes + self.history_.notes
        self.n_parameters_ = count_parameters(self.network_)

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(brain, train_regions) first")
        brain = self._align_genes(brain)
        self._check_expression(brain)
        with self._torch_context():
            return predict_network(
                self.network_,
                self._device_tensors(brain),
                i,
                j,
                device=self.device_,
                batch_size=max(PREDICTION_CHUNK_PAIRS, int(self.batch_size)),
            )

    def refit_uses_selection_fit(self) -> bool:
        """Whether `refit_params` can hand the refit anything (the early-stopped epoch count)."""
        return bool(self.early_stopping) and self.refit_epochs == "best"

    def refit_params(self) -> dict[str, Any]:
        """What a refit on all training regions (no validation left) takes from this fit.

        When validation regions drove early stopping: ``{"epochs": best_epoch + 1}``; with
        a step budget (``min_steps``/``max_steps``) also ``min_steps = max_steps = 0``, since
        that epoch count is already the rescaled one; with ``refit_schedule="replay"`` and a
        plateau schedule also ``lr_drop_epochs``, the epochs up to the best one at whose
        start the learning rate was halved. ``{}`` without early stopping. Used by tuning.
        """
        history = getattr(self, "history_", None)
        if self.refit_epochs == "budget" or history is None or not history.val_loss or history.best_epoch is None:
            return {}
        best = int(history.best_epoch)
        params: dict[str, Any] = {"epochs": best + 1}
        if int(self.min_steps) or int(self.max_steps):
            params.update(min_steps=0, max_steps=0)
        if self.refit_schedule == "replay" and self.lr_schedule == "plateau":
            params["lr_drop_epochs"] = history.lr_drop_epochs(through=best)
        return params

    # ------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted model (state dict, hyperparameters, gene list, history) with ``torch.save``."""
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to save")
        path = Path(path)
        payload = {
            "format": SAVE_FORMAT,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "hyperparameters": _plain(self.get_params()),
            "genes": list(self.genes_),
            "state_dict": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "history": _plain(self.history_.as_dict()),
            "notes": list(self.notes_),
            "expression_scaling": None
            if getattr(self, "expression_center_", None) is None
            else {"center": self.expression_center_.tolist(), "scale": self.expression_scale_.tolist()},
            "structural_features": int(getattr(self, "n_structural_features_", 0)),
        }
        torch.save(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> NeuralConnectivityModel:
        """Rebuild a model written by `save`; ``device`` overrides the saved device setting."""
        path = Path(path)
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != SAVE_FORMAT:
            raise ValueError(f"{path}: not a spatiomol neural model file (field 'format' != {SAVE_FORMAT!r})")
        expected = f"{cls.__module__}:{cls.__qualname__}"
        if payload["class"] != expected:
            raise ValueError(f"{path}: field 'class' is {payload['class']!r}, expected {expected!r}")
        params = dict(payload["hyperparameters"])
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model._validate_params()
        model.genes_ = tuple(payload["genes"])
        model.device_ = resolve_device(model.device)
        if payload.get("structural_features"):
            model.n_structural_features_ = int(payload["structural_features"])
        with model._torch_context():
            model.network_ = model._build_network(len(model.genes_))
            model._after_build(len(model.genes_))
        model.network_.load_state_dict(payload["state_dict"])
        model.network_.to(model.device_).eval()
        history = payload.get("history", {})
        model.history_ = TrainingHistory(**{k: v for k, v in history.items()})
        model.notes_ = list(payload.get("notes", []))
        scaling = payload.get("expression_scaling")
        model.expression_center_ = None if scaling is None else np.asarray(scaling["center"], dtype=np.float64)
        model.expression_scale_ = None if scaling is None else np.asarray(scaling["scale"], dtype=np.float64)
        model.n_parameters_ = count_parameters(model.network_)
        return model


def count_parameters(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in network.parameters() if p.requires_grad))


def _plain(value: Any) -> Any:
    """Hyperparameters/history as plain Python containers (safe for ``weights_only`` loading)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):  # kept a tuple, so a loaded model's get_params equals the saved one's
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return copy.deepcopy(value)
