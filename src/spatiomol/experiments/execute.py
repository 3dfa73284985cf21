"""One run: load its data, fit its model, score its test edges and store the result.

For each `RunSpec`: resolve its brain(s) (`spatiomol.data.sources.resolve_source`; a
`Brain` passed as a transfer source as is), take its split
(`spatiomol.experiments.inputs.get_split`; a transfer run trains on every region of its
source), swap in the requested expression (true, a null of the run's null family,
permuted; `inputs.input_brain`), select hyperparameters by nested inner CV
(`spatiomol.evaluation.tuning.select_and_fit`) or fit the default configuration, predict
the test edges, score them (`spatiomol.evaluation.evaluate`) and write the rows
atomically (`ResultsStore.write_run`). `execute_run` claims, computes and writes one run,
so whatever finished survives a kill; scheduling many runs is `spatiomol.experiments.runner`.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.sources import resolve_source
from spatiomol.evaluation import evaluate
from spatiomol.evaluation.splits import Split
from spatiomol.evaluation.tuning import select_and_fit
from spatiomol.experiments.grid import RunSpec
from spatiomol.experiments.inputs import _as_brain, get_split, input_brain, shared_gene_brains
from spatiomol.experiments.store import CHECK_NONE, CHECK_NOT_TRAINED, CHECK_TRAINED, KEY_COLUMNS, ResultsStore
from spatiomol.hashing import canonical_json
from spatiomol.models import registry
from spatiomol.models.base import ConnectivityModel


@dataclass(frozen=True)
class RunData:
    """What one run fits on and predicts.

    Attributes
    ----------
    fit_brain : Brain
        The brain the model is fitted on (expression swapped for null/permuted inputs).
    train : ndarray of int, shape (n_train,)
        Training regions of ``fit_brain`` (a transfer run: every region).
    split : Split or None
        The cross-validation split of a grid run; None for a transfer run.
    predict_brain : Brain
        The brain whose test edges the model predicts (``fit_brain`` for grid runs, the
        target for transfer runs).
    score_brain : Brain
        The brain whose targets score the predictions (the dataset as loaded).
    i, j : ndarray of int, shape (n_test_edges,)
        Test edges (region indices of ``predict_brain``), ``i < j``.
    """

    fit_brain: Brain
    train: np.ndarray
    split: Split | None
    predict_brain: Brain
    score_brain: Brain
    i: np.ndarray
    j: np.ndarray


@dataclass
class FittedRun:
    """A run's fitted model with the data it was fitted on (`fit_run`)."""

    spec: RunSpec
    model: ConnectivityModel
    hyperparameters: dict[str, Any]
    fit_seconds: float
    data: RunData
    cpu_seconds: float = float("nan")


def run_data(spec: RunSpec, results_dir: str | os.PathLike) -> RunData:
    """Load the brains, split and input expression of ``spec`` (nulls from ``results_dir``)."""
    store = ResultsStore(results_dir)
    gene_order = spec.settings_dict["gene_order"]
    if spec.is_transfer:
        source = _as_brain(spec.train_source, gene_order)
        target = _as_brain(spec.test_source, gene_order)
        src, tgt = shared_gene_brains(source, target)
        seen = input_brain(source, spec, store, fit_brain=src)
        i, j = tgt.pairs()
        return RunData(seen, np.arange(src.n_regions), None, tgt, tgt, i, j)
    brain = resolve_source(spec.dataset, gene_order=gene_order)
    split = get_split(brain, spec)
    seen = input_brain(brain, spec, store)
    i, j = pairs_within(split.test)
    return RunData(seen, split.train, split, seen, brain, i, j)


def _with_seed(model_name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Add ``seed`` / ``random_state`` when the model takes one and none is fixed."""
    default, _ = registry.search_space(model_name)
    accepted = set(registry.model_class(model_name)._get_param_names()) & set(default)
    out = dict(params)
    for name in ("seed", "random_state"):
        if name in accepted and name not in out:
            out[name] = seed
    return out


def fit_run(spec: RunSpec, results_dir: str | os.PathLike) -> FittedRun:
    """Fit the model of run ``spec`` exactly as the runner does (same data, seeds, selection).

    Parameters
    ----------
    spec : RunSpec
        A grid or transfer run (e.g. `run_spec` of a stored run).
    results_dir : path
        The run's results folder (its cached nulls are read from there).

    Returns
    -------
    FittedRun
        The fitted model, the hyperparameters it was fitted with, the wall time of
        selection + fitting (s) and the `RunData` (brains, training regions, test edges).
    """
    data = run_data(spec, results_dir)
    settings = spec.settings_dict
    seed = spec.model_seed()
    fixed = dict(settings["model_params"])
    t0, c0 = time.perf_counter(), time.process_time()
    if settings.get("tuning"):
        # candidates depend on the root seed only (the same on every split, as in the
        # protocol); the model's initialisation seed is the run's (shared by its true and
        # null runs), as for untuned runs
        model, params, _ = select_and_fit(
            spec.model,
            data.fit_brain,
            data.split,
            n_configs=int(settings["n_configs"]),
            seed=spec.seed,
            model_params=_with_seed(spec.model, fixed, seed),
        )
        params = dict(params)
    else:
        default, _ = registry.search_space(spec.model)
        model = registry.make_model(spec.model, **_with_seed(spec.model, {**default, **fixed}, seed))
        model.fit(data.fit_brain, data.train)
        params = model.get_params()
    return FittedRun(spec, model, params, time.perf_counter() - t0, data, time.process_time() - c0)


def compute_run(spec: RunSpec, store: ResultsStore) -> tuple[dict[str, Any], ConnectivityModel]:
    """Fit and score one run; → (the fields `ResultsStore.write_run` takes, the fitted model)."""
    fitted = fit_run(spec, store.root)
    data = fitted.data
    y_pred = fitted.model.predict(data.predict_brain, data.i, data.j)
    rows = evaluate(data.score_brain, data.i, data.j, y_pred)
    record = {
        "metric_rows": rows,
        "hyperparameters": fitted.hyperparameters,
        "n_parameters": int(getattr(fitted.model, "n_parameters_", -1)),
        "fit_seconds": fitted.fit_seconds,
        "fit_cpu_seconds": fitted.cpu_seconds,
        "training_check": training_check(fitted.model),
        "predictions": {
            "i": data.i,
            "j": data.j,
            "y_pred": y_pred,
            "y_true": data.score_brain.targets(data.i, data.j),
        },
    }
    return record, fitted.model


def training_check(model: ConnectivityModel) -> str:
    """The store's `training_check` of a fitted model: n/a without a training history
    (closed-form models), else trained / not trained with the diagnosis' reasons."""
    history = getattr(model, "history_", None)
    if history is None or not hasattr(history, "not_trained"):
        return CHECK_NONE
    if history.not_trained:
        return f"{CHECK_NOT_TRAINED}: " + "; ".join(history.not_trained)
    return CHECK_TRAINED


def execute_run(spec: RunSpec, results_dir: str, save_model: bool = False) -> dict[str, Any]:
    """Claim, compute and store one run unless it is done; never raises (failures are recorded).

    Returns
    -------
    dict with ``run_id``, ``label``, ``status`` ("done", "skipped" when already stored,
    "claimed" when another live process is computing it, or "failed"), ``seconds``
    (wall time of the whole run), ``error`` (failures only) and ``training_check`` (done
    runs: the store's `training_check`).
    """
    store = ResultsStore(results_dir)
    rid = spec.run_id
    result = {"run_id": rid, "label": spec.label(), "status": "skipped", "seconds": 0.0}
    if store.is_done(rid):
        return result
    t0 = time.perf_counter()
    with store.claimed(rid) as held:
        if not held:
            return {**result, "status": "claimed"}
        if store.is_done(rid):  # finished by another process between the check and the claim
            return result
        try:
            record, model = compute_run(spec, store)
            if save_model:
                store.save_model(rid, model)
            store.write_run(spec.key, **record)
        except Exception as err:  # noqa: BLE001 — recorded and reported, the grid goes on
            store.write_failure(rid, f"{spec.label()}\n{canonical_json(spec.key)}\n\n{traceback.format_exc()}")
            return {**result, "status": "failed", "seconds": time.perf_counter() - t0, "error": error_text(err)}
    store.clear_failure(rid)
    return {
        **result,
        "status": "done",
        "seconds": time.perf_counter() - t0,
        "training_check": record["training_check"],
    }


def error_text(err: BaseException) -> str:
    """``"TypeName: message"`` of an exception, as run results report it."""
    return f"{type(err).__name__}: {err}"


# ------------------------------------------------------------- stored runs
def save_run_model(store: ResultsStore, rid: str, model: ConnectivityModel) -> Path:
    """Save run ``rid``'s fitted model in ``store`` (`ResultsStore.save_model`)."""
    return store.save_model(rid, model)


def load_run_model(results_dir: str | os.PathLike, run_id: str) -> ConnectivityModel:
    """The fitted model of run ``run_id`` saved by a grid with ``save_models: true``.

    Raises
    ------
    FileNotFoundError
        When the run saved no model (``save_models`` was off, or the run is not done).
    ValueError
        When the file is not a saved run model.
    """
    return ResultsStore(results_dir).load_model(run_id)


def run_spec(results_dir: str | os.PathLike, run_id: str) -> RunSpec:
    """The `RunSpec` of a stored run (its key columns), e.g. to refit it with `fit_run`."""
    store = ResultsStore(results_dir)
    path = store.part_path(run_id)
    if not path.exists():
        raise FileNotFoundError(f"{path}: run {run_id} is not stored in {store.root}")
    row = pd.read_parquet(path, columns=list(KEY_COLUMNS)).iloc[0]
    ints = ("repeat", "fold", "null_index", "seed")
    return RunSpec(**{c: int(row[c]) if c in ints else str(row[c]) for c in KEY_COLUMNS})


__all__ = [
    "FittedRun",
    "RunData",
    "compute_run",
    "error_text",
    "execute_run",
    "fit_run",
    "load_run_model",
    "run_data",
    "run_spec",
    "save_run_model",
    "training_check",
]
