"""Nested hyperparameter selection inside one outer split (paper App. A.3).

For one outer `Split`:

1. The outer training regions are divided by `inner_validation` into inner-training
   and validation regions with the outer split's rule (random subset, or a spatial block
   for spatial splits).
2. Candidate configurations are the model's default, always included, **plus**
   ``n = clip(n_configs, 3, 6)`` distinct random configurations of its grid
   (``models/configs/<name>.yaml``) other than the default — so ``n + 1`` candidates —
   or every distinct configuration when the grid has fewer than ``n`` besides the
   default (paper App. A.3: 3–6 sampled configurations and the default).
   Hyperparameters that provably cannot change the fit on this brain are not searched
   (`inert_hyperparameters`): target augmentation (``aug_prob``, ``aug_style``) when the
   brain has no subject stack, and ``aug_style`` in a candidate with ``aug_prob = 0``;
   two candidates that differ only there would be the same model fitted twice.
3. Each candidate is fitted on the inner-training regions (``val_regions`` passed, for
   early stopping only) and scored by the MSE over the validation edges (all pairs of
   validation regions).
4. The lowest validation MSE wins (ties: the earlier candidate, so the default first);
   it is refitted on all outer training regions, without validation regions. A lone
   candidate (everything fixed) whose refit takes nothing from its selection fit
   (``refit_uses_selection_fit()`` false: a neural model with ``refit_epochs="budget"``
   or ``early_stopping=False``) is only fitted once, on all outer training regions; its
   table row has NaN validation scores.

Test regions are never touched. Seeds: the candidate configurations depend only on
``seed`` (every split of a run tries the same candidates, so their scores are
comparable); the validation regions depend on ``(seed, split.repeat, split.fold)``.
"""

from __future__ import annotations

import json
import math
import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.evaluation.metrics import mse, pearson_r
from spatiomol.evaluation.splits import Split, inner_validation
from spatiomol.models import registry
from spatiomol.models.base import ConnectivityModel

MIN_CONFIGS, MAX_CONFIGS = 3, 6
_EXHAUSTIVE_LIMIT = 100_000  # grids up to this size are sampled by a full permutation

#: the neural models' target-augmentation hyperparameters (`spatiomol.models.augment`)
AUGMENTATION_KEYS: tuple[str, ...] = ("aug_prob", "aug_style")


def unused_hyperparameters(brain: Brain) -> set[str]:
    """Hyperparameter names that cannot change any model fitted on ``brain``, whatever their values.

    Target augmentation swaps training targets for individual subjects' values, so
    without a subject stack (``brain.subjects is None``) ``aug_prob`` and ``aug_style``
    change nothing (`spatiomol.models.augment.TargetAugmenter` is inactive and draws no
    random numbers). A test fits an MLP both ways and checks bit-identical predictions.
    """
    return set(AUGMENTATION_KEYS) if brain.subjects is None else set()


def inert_hyperparameters(brain: Brain, config: Mapping[str, Any]) -> set[str]:
    """Keys of ``config`` that cannot change a model fitted on ``brain`` with ``config``.

    `unused_hyperparameters`, and ``aug_style`` when ``aug_prob == 0`` (augmentation off).
    """
    inert = unused_hyperparameters(brain) & set(config)
    if "aug_style" in config and config.get("aug_prob") == 0:
        inert.add("aug_style")
    return inert


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=repr)


def _check_grid(model_name: str, grid: dict[str, Any]) -> dict[str, list]:
    checked = {}
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(
                f"model {model_name!r}: config field grid.{key} must be a non-empty list of values, got {values!r}"
            )
        checked[key] = list(values)
    return checked


def sample_configs(
    default: dict[str, Any],
    grid: dict[str, list],
    n_configs: int = 4,
    seed: int = 0,
    canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The default configuration plus ``clip(n_configs, 3, 6)`` distinct random grid configurations.

    Parameters
    ----------
    default : dict
        Full default hyperparameters; always the first candidate.
    grid : dict of str → list
        Values each searched hyperparameter may take; a candidate is the default with
        every grid key set to one of its values.
    n_configs : int
        Number of randomly sampled configurations, clipped to 3..6; the default is
        added on top (so 4..7 candidates). Fewer are sampled only when the grid has
        fewer distinct configurations other than the default.
    seed : int
        Seed of the ``numpy.random.Generator`` drawing grid points without replacement.
    canonical : callable, optional
        Maps a configuration to the one it is equivalent to (e.g. values that have no
        effect reset to the default's); candidates are returned in that form and are
        distinct after it.

    Returns
    -------
    list of dict
        Distinct configurations, the default first, then the sampled ones
        (``len == 1 + clip(n_configs, 3, 6)`` unless the grid is smaller).
    """
    try:
        requested = operator.index(n_configs)
    except TypeError:
        raise ValueError(f"n_configs must be an integer, got {n_configs!r}") from None
    target = 1 + int(np.clip(requested, MIN_CONFIGS, MAX_CONFIGS))  # the default + the sampled ones
    keys = list(grid)
    sizes = [len(grid[k]) for k in keys]
    total = math.prod(sizes)
    rng = np.random.default_rng(seed)
    canonical = canonical or dict
    configs = [canonical(dict(default))]
    seen = {_canonical(configs[0])}

    def config_at(digits: list[int]) -> dict[str, Any]:
        return {**default, **{k: grid[k][d] for k, d in zip(keys, digits)}}

    def decode(index: int) -> list[int]:
        digits = []
        for size in reversed(sizes):
            index, digit = divmod(index, size)
            digits.append(digit)
        return digits[::-1]

    if total <= _EXHAUSTIVE_LIMIT:
        candidates = (decode(int(k)) for k in rng.permutation(total))
    else:  # huge grid: independent draws per key; repeats are rejected below
        candidates = ([int(rng.integers(s)) for s in sizes] for _ in range(100 * target))
    for digits in candidates:
        if len(configs) == target:
            break
        config = canonical(config_at(digits))
        key = _canonical(config)
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def _inner_seed(seed: int, split: Split) -> int:
    sequence = np.random.SeedSequence(int(seed), spawn_key=(split.repeat, split.fold))
    return int(sequence.generate_state(1)[0])


@dataclass(frozen=True)
class _Validation:
    """Inner-training and validation regions of one outer split, and the validation edges' targets."""

    inner_train: np.ndarray
    val: np.ndarray
    val_i: np.ndarray
    val_j: np.ndarray
    val_true: np.ndarray


def _search_space(model_name: str, brain: Brain, fixed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """The model's default configuration with ``fixed`` applied, and the grid left to search on ``brain``."""
    default, grid = registry.search_space(model_name)  # ValueError naming the known models
    grid = _check_grid(model_name, grid)
    unknown = [k for k in fixed if k not in default and k not in grid]
    if unknown:
        raise ValueError(f"model {model_name!r} has no hyperparameters {unknown}; known: {sorted(default)}")
    default = {**default, **fixed}
    unused = unused_hyperparameters(brain)
    grid = {k: v for k, v in grid.items() if k not in fixed and k not in unused}
    return default, grid


def _candidates(
    brain: Brain, default: dict[str, Any], grid: dict[str, list], n_configs: int, seed: int
) -> list[dict[str, Any]]:
    """The candidate configurations, with values inert on ``brain`` reset to the default's."""

    def without_inert(config: dict[str, Any]) -> dict[str, Any]:
        return {**config, **{k: default[k] for k in inert_hyperparameters(brain, config) if k in default}}

    return sample_configs(default, grid, n_configs=n_configs, seed=seed, canonical=without_inert)


def _validation_split(brain: Brain, split: Split, val_fraction: float, seed: int) -> _Validation:
    """Divide the outer training regions into inner-training and validation regions."""
    inner_train, val = inner_validation(
        brain, split.train, split.kind, fraction=val_fraction, seed=_inner_seed(seed, split)
    )
    val_i, val_j = pairs_within(val)
    return _Validation(inner_train, val, val_i, val_j, brain.targets(val_i, val_j))


def _candidate_row(
    validation: _Validation,
    grid: dict[str, list],
    index: int,
    params: dict[str, Any],
    val_pred: np.ndarray | None,
    seconds: float,
) -> dict[str, Any]:
    """One candidate's row of the selection table, scored on the validation edges."""
    # val_pred None: the candidate was not fitted on the inner-training regions
    val_true = validation.val_true
    finite = val_pred is not None and bool(np.all(np.isfinite(val_pred)))
    unscored = float("nan") if val_pred is None else float("inf")
    return {
        "candidate": index,
        "is_default": index == 0,
        "val_mse": mse(val_true, val_pred) if finite else unscored,
        "val_pearson": pearson_r(val_true, val_pred) if finite else float("nan"),
        "n_inner_train": int(validation.inner_train.size),
        "n_val": int(validation.val.size),
        "n_val_edges": int(validation.val_i.size),
        "fit_seconds": seconds,
        "params": _canonical(params),
        **{k: params[k] for k in grid},
    }


def _fit_candidates(
    model_name: str,
    brain: Brain,
    candidates: list[dict[str, Any]],
    validation: _Validation,
    grid: dict[str, list],
) -> tuple[list[ConnectivityModel], pd.DataFrame]:
    """Fit every candidate on the inner-training regions; the fitted models and their table rows."""
    records = []
    fitted = []
    for index, params in enumerate(candidates):
        model = registry.make_model(model_name, **params)
        start = time.perf_counter()
        model.fit(brain, validation.inner_train, val_regions=validation.val)
        seconds = time.perf_counter() - start
        fitted.append(model)
        val_pred = model.predict(brain, validation.val_i, validation.val_j)
        records.append(_candidate_row(validation, grid, index, params, val_pred, seconds))
    return fitted, pd.DataFrame(records)


def _best_candidate(model_name: str, table: pd.DataFrame) -> int:
    """Index of the candidate with the lowest finite validation MSE (ties: the earlier one)."""
    scores = table["val_mse"].to_numpy(dtype=float)
    if not np.any(np.isfinite(scores)):
        raise ValueError(f"model {model_name!r}: every candidate gave non-finite validation predictions")
    return int(np.argmin(np.where(np.isfinite(scores), scores, np.inf)))


def select_and_fit(
    model_name: str,
    brain: Brain,
    split: Split,
    n_configs: int = 4,
    seed: int = 0,
    *,
    val_fraction: float = 0.2,
    model_params: dict[str, Any] | None = None,
    **fixed: Any,
) -> tuple[ConnectivityModel, dict[str, Any], pd.DataFrame]:
    """Choose hyperparameters on validation regions, then fit on all training regions.

    Parameters
    ----------
    model_name : str
        A name of `spatiomol.models.registry.MODELS`.
    brain : Brain
    split : Split
        Outer split; only ``split.train`` is used.
    n_configs : int
        Randomly sampled configurations to try, clipped to 3..6 (fewer only if the
        grid is smaller); the default configuration is always tried in addition.
    seed : int
        Seeds the candidate sampling and the validation regions (see module docstring).
    val_fraction : float
        Fraction of training regions held out for validation.
    model_params : dict, optional
        Hyperparameters held fixed for every candidate, as a mapping: the way to fix a
        model's own ``seed`` (which the keyword ``seed`` above cannot reach).
    **fixed
        Hyperparameters held fixed for every candidate (removed from the grid).

    Returns
    -------
    model : ConnectivityModel
        The chosen configuration fitted on all of ``split.train``.
    params : dict
        The chosen hyperparameters, updated with the winner's ``refit_params()``
        (for early-stopped models: the epoch count chosen on the validation regions).
    table : DataFrame
        One row per candidate: ``candidate``, ``is_default``, ``chosen``, ``val_mse``
        (squared target units), ``val_pearson``, ``n_inner_train``, ``n_val``,
        ``n_val_edges``, ``fit_seconds``, ``params`` (JSON) and one column per grid key.
    """
    if split.n_regions != brain.n_regions:
        raise ValueError(
            f"split {split.key} covers {split.n_regions} regions but brain {brain.name!r} has {brain.n_regions}"
        )
    default, grid = _search_space(model_name, brain, {**(model_params or {}), **fixed})
    candidates = _candidates(brain, default, grid, n_configs, seed)
    validation = _validation_split(brain, split, val_fraction, seed)
    if len(candidates) == 1 and not registry.make_model(model_name, **candidates[0]).refit_uses_selection_fit():
        # a lone candidate whose refit takes nothing from the inner fit: the inner fit would
        # choose nothing and hand the refit nothing, so only the refit runs
        final = registry.make_model(model_name, **candidates[0]).fit(brain, split.train)
        row = _candidate_row(validation, grid, 0, candidates[0], None, float("nan"))
        table = pd.DataFrame([{**row, "chosen": True}])
        return final, dict(candidates[0]), table
    fitted, table = _fit_candidates(model_name, brain, candidates, validation, grid)
    best = _best_candidate(model_name, table)
    table["chosen"] = table["candidate"] == best
    # early-stopped models refit for the epoch count chosen on the validation regions
    chosen = {**candidates[best], **fitted[best].refit_params()}
    final = registry.make_model(model_name, **chosen)
    final.fit(brain, split.train)
    return final, chosen, table
