"""Run experiment grids (and transfer pairs) into a results store, locally (joblib) or on Dask.

For each `RunSpec`: resolve its brain(s) (`spatiomol.data.sources.resolve_source`: bundled
name, user YAML or ``synthetic:...``), take its split (``spatiomol.evaluation.make_splits``;
a transfer run trains on every region of its source), swap in the requested expression
(true, a null of the run's null family, permuted), select hyperparameters by nested inner CV
(``spatiomol.evaluation.tuning.select_and_fit``) or fit the default configuration,
predict the test edges, score them (``spatiomol.evaluation.evaluate``) and write the rows
atomically. Each worker claims, computes and writes its own run, so whatever finished
survives a kill, and several processes (or Dask workers) can share one results folder.

Per-process caches (brains, splits, nulls) are keyed by content (the source's
`spatiomol.data.sources.source_digest`), so an edited dataset file is never served from
a cache on a long-lived worker or in a notebook.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from spatiomol.atomic import atomic_path
from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.sources import resolve_source, source_digest
from spatiomol.evaluation import evaluate, make_splits, save_splits
from spatiomol.evaluation.splits import Split
from spatiomol.evaluation.tuning import select_and_fit
from spatiomol.experiments.config import ExperimentConfig, null_family_label, resolved_nulls
from spatiomol.experiments.grid import RunSpec, build_grid, random_permutation, select_runs
from spatiomol.experiments.store import CHECK_NONE, CHECK_NOT_TRAINED, CHECK_TRAINED, KEY_COLUMNS, ResultsStore
from spatiomol.hashing import array_digest, canonical_json, expression_sha256, to_jsonable
from spatiomol.models import registry
from spatiomol.models.base import ConnectivityModel
from spatiomol.nulls import NullSet, generate_nulls

#: seconds between checks on runs that another process has claimed
CLAIM_POLL_SECONDS = 0.5
#: format tag of the files `save_run_model` writes
MODEL_FILE_FORMAT = "spatiomol-run-model/1"

# per-process caches (each joblib / Dask worker keeps its own), keyed by content
_SPLITS: dict[tuple, list[Split]] = {}
_NULLSETS: dict[tuple, NullSet] = {}


# --------------------------------------------------------------------- sources
def source_name(source: str | Brain) -> str:
    """The label of a source in run keys and file names: the string itself, or a brain's name."""
    return source.name if isinstance(source, Brain) else source


def source_brain(source: str | Brain, gene_order: str = "as_given") -> Brain:
    """The `Brain` of a source string (`resolve_source`, cached by content); a `Brain` as is."""
    if isinstance(source, Brain):
        return source
    return resolve_source(source, gene_order=gene_order)


def _content_key(source: str | Brain, gene_order: str) -> tuple[str, ...]:
    """Cache key of a source's data: its content digest (a brain's array hashes), not its name."""
    if isinstance(source, Brain):
        return ("brain", expression_sha256(source.X), array_digest(source.Y), array_digest(source.coords))
    return ("source", source_digest(source), gene_order)


def shared_gene_brains(source: Brain, target: Brain) -> tuple[Brain, Brain]:
    """Both brains restricted to the genes they share, in the source's order.

    Raises
    ------
    ValueError
        When the brains share no gene.
    """
    target_genes = set(target.genes)
    shared = [g for g in source.genes if g in target_genes]
    if not shared:
        raise ValueError(
            f"transfer {source.name!r} → {target.name!r}: no shared genes "
            f"(source has {source.n_genes}, target {target.n_genes})"
        )
    return source.select_genes(shared), target.select_genes(shared)


def dataset_fingerprint(brain: Brain) -> dict[str, Any]:
    """Hashes of a brain's arrays plus its provenance, for the manifest."""
    return {
        "name": brain.name,
        "n_regions": brain.n_regions,
        "n_genes": brain.n_genes,
        "X_sha256": array_digest(np.nan_to_num(brain.X, nan=-999.0)),
        "Y_sha256": array_digest(brain.Y),
        "coords_sha256": array_digest(brain.coords),
        "target_kind": brain.target_kind,
        "target_scale": brain.target_scale,
        "provenance": to_jsonable(brain.provenance),
    }


def get_split(brain: Brain, spec: RunSpec) -> Split:
    """Split (``spec.repeat``, ``spec.fold``) of ``spec.split_type`` for this brain."""
    settings = spec.settings_dict
    n_folds = int(settings["folds"])
    key = (
        _content_key(spec.dataset, settings["gene_order"]),
        spec.split_type,
        spec.repeat,
        n_folds,
        spec.seed,
    )
    if key not in _SPLITS:
        # repeat r of make_splits depends only on (seed, r): draw r + 1 repeats, keep r
        _SPLITS[key] = make_splits(brain, spec.split_type, n_repeats=spec.repeat + 1, n_folds=n_folds, seed=spec.seed)[
            spec.repeat * n_folds :
        ]
    for split in _SPLITS[key]:
        if split.repeat == spec.repeat and split.fold == spec.fold:
            return split
    raise ValueError(f"{spec.label()}: make_splits returned no split for repeat {spec.repeat}, fold {spec.fold}")


# ----------------------------------------------------------------------- nulls
def nulls_from_settings(brain: Brain, settings: dict[str, Any]) -> NullSet:
    """`spatiomol.nulls.generate_nulls` with one null family's settings (every `NULL_DEFAULTS` key)."""
    settings = resolved_nulls(settings)
    return generate_nulls(
        brain,
        n=int(settings["n"]),
        top=int(settings["top"]),
        seed=int(settings["seed"]),
        method=str(settings["method"]),
        min_moved=float(settings["min_moved"]),
        subcortex=str(settings["subcortex"]),
        cge_match=bool(settings["cge_match"]),
    )


def ensure_nulls(
    store: ResultsStore,
    dataset: str | Brain,
    nulls_settings: dict[str, Any],
    gene_order: str = "as_given",
    log: Callable[[str], None] = print,
) -> Path:
    """Generate (once) and cache the top-K nulls of one family of ``dataset``; return the file.

    ``nulls_settings`` are one family's settings (as `resolved_nulls` completes them; the
    file is `ResultsStore.nulls_path` of those settings, one per family).
    Uses `spatiomol.nulls.generate_nulls` and `NullSet.save`; an existing file is reused
    only for the data it was made from: its region labels must match the brain's, and its
    ``metadata["expression_sha256"]`` the brain's current expression
    (`spatiomol.hashing.expression_sha256`), else a ValueError (nulls selected
    by CGE match on other expression are not matched nulls of this one).
    """
    name = source_name(dataset)
    nulls_settings = resolved_nulls(nulls_settings)
    path = store.nulls_path(name, nulls_settings, gene_order)
    brain = source_brain(dataset, gene_order)
    if path.exists():
        nullset = NullSet.load(path)
        nullset.check_brain(brain)
        check_nulls_expression(nullset, brain, path, name)
        if nullset.top < int(nulls_settings["top"]):
            raise ValueError(f"{path}: holds {nullset.top} nulls, expected {nulls_settings['top']}")
        return path
    family = null_family_label(nulls_settings)
    log(f"generating {nulls_settings['n']} {family} nulls for {name} (top {nulls_settings['top']}) ...")
    t0 = time.perf_counter()
    nulls_from_settings(brain, nulls_settings).save(path)  # atomic (tmp file + os.replace)
    log(f"{family} nulls for {name}: {time.perf_counter() - t0:.1f} s → {path}")
    return path


def check_nulls_expression(nullset: NullSet, brain: Brain, path: Path, dataset: str) -> None:
    """Raise ValueError unless ``nullset`` was generated from ``brain``'s current expression."""
    stored = nullset.metadata.get("expression_sha256")
    current = expression_sha256(brain.X)
    if stored != current:
        raise ValueError(
            f"{path}: cached nulls of dataset {dataset!r} were generated from different expression "
            f"(field 'expression_sha256' is {str(stored)[:16]}..., the dataset's expression now hashes to "
            f"{current[:16]}...); the dataset's contents changed since this results folder was made — "
            "use a new results folder"
        )


def _run_nulls(store: ResultsStore, spec: RunSpec, brain: Brain) -> NullSet:
    """The cached nulls of the run's family for its training dataset ``brain`` (generated by `ensure_nulls`)."""
    settings = spec.settings_dict
    name = source_name(spec.train_source)
    path = store.nulls_path(name, resolved_nulls(settings["nulls"]), settings["gene_order"])
    key = (_content_key(spec.train_source, settings["gene_order"]), str(path))
    if key not in _NULLSETS:
        if not path.exists():
            raise FileNotFoundError(f"{path}: nulls for {name} not generated (run ensure_nulls first)")
        nullset = NullSet.load(path)
        check_nulls_expression(nullset, brain, path, name)
        _NULLSETS[key] = nullset
    return _NULLSETS[key]


def input_brain(brain: Brain, spec: RunSpec, store: ResultsStore, fit_brain: Brain | None = None) -> Brain:
    """The brain a run's model is fitted on: true, null (of the run's family) or randomly permuted expression.

    ``brain`` is the run's training dataset as resolved; ``fit_brain`` the brain to swap
    expression in (default ``brain``; a transfer run passes the source restricted to the
    shared genes, whose regions are the source's).
    """
    fit_brain = brain if fit_brain is None else fit_brain
    if spec.input == "true":
        return fit_brain
    if spec.input == "null":
        return _run_nulls(store, spec, brain).apply(fit_brain, spec.null_index)
    if spec.input == "permuted":
        perm = random_permutation(fit_brain.n_regions, spec.derived_seed("permutation"))
        return fit_brain.permute_expression(perm, note="uniform random permutation")
    raise ValueError(f"{spec.label()}: unknown input {spec.input!r}; expected true, null or permuted")


# ------------------------------------------------------------------ one run
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


def run_data(spec: RunSpec, results_dir: str | os.PathLike) -> RunData:
    """Load the brains, split and input expression of ``spec`` (nulls from ``results_dir``)."""
    store = ResultsStore(results_dir)
    gene_order = spec.settings_dict["gene_order"]
    if spec.is_transfer:
        source = source_brain(spec.train_source, gene_order)
        target = source_brain(spec.test_source, gene_order)
        src, tgt = shared_gene_brains(source, target)
        seen = input_brain(source, spec, store, fit_brain=src)
        i, j = tgt.pairs()
        return RunData(seen, np.arange(src.n_regions), None, tgt, tgt, i, j)
    brain = source_brain(spec.dataset, gene_order)
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
    t0 = time.perf_counter()
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
    return FittedRun(spec, model, params, time.perf_counter() - t0, data)


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


# ------------------------------------------------------------- saved models
def _has_own_format(model: Any) -> bool:
    # neural models write their own file (state dict, CPU tensors) with save / load
    return callable(getattr(model, "save", None)) and callable(getattr(type(model), "load", None))


def save_run_model(store: ResultsStore, rid: str, model: ConnectivityModel) -> Path:
    """Save run ``rid``'s fitted model to ``store.model_path(rid)`` (atomic, joblib).

    Neural models are stored through their own ``save`` (CPU tensors), any other
    estimator as a pickle.
    """
    cls = type(model)
    record: dict[str, Any] = {"format": MODEL_FILE_FORMAT, "class": f"{cls.__module__}:{cls.__qualname__}"}
    if _has_own_format(model):
        with tempfile.TemporaryDirectory() as folder:
            record["saved"] = Path(model.save(Path(folder) / "model")).read_bytes()
    else:
        record["model"] = model
    path = store.model_path(rid)
    with atomic_path(path) as tmp:
        joblib.dump(record, tmp)
    return path


def load_run_model(results_dir: str | os.PathLike, run_id: str) -> ConnectivityModel:
    """The fitted model of run ``run_id`` saved by a grid with ``save_models: true``.

    Raises
    ------
    FileNotFoundError
        When the run saved no model (``save_models`` was off, or the run is not done).
    ValueError
        When the file is not a saved run model.
    """
    path = ResultsStore(results_dir).model_path(run_id)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no model saved for run {run_id} (set save_models: true, or refit it with fit_run)"
        )
    record = joblib.load(path)
    if not isinstance(record, dict) or record.get("format") != MODEL_FILE_FORMAT:
        raise ValueError(f"{path}: not a saved run model (field 'format' != {MODEL_FILE_FORMAT!r})")
    if "model" in record:
        return record["model"]
    module, _, qualname = record["class"].partition(":")
    cls = getattr(import_module(module), qualname)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "model"
        tmp.write_bytes(record["saved"])
        return cls.load(tmp)


def run_spec(results_dir: str | os.PathLike, run_id: str) -> RunSpec:
    """The `RunSpec` of a stored run (its key columns), e.g. to refit it with `fit_run`."""
    store = ResultsStore(results_dir)
    path = store.part_path(run_id)
    if not path.exists():
        raise FileNotFoundError(f"{path}: run {run_id} is not stored in {store.root}")
    row = pd.read_parquet(path, columns=list(KEY_COLUMNS)).iloc[0]
    ints = ("repeat", "fold", "null_index", "seed")
    return RunSpec(**{c: int(row[c]) if c in ints else str(row[c]) for c in KEY_COLUMNS})


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
                save_run_model(store, rid, model)
            store.write_run(spec.key, **record)
        except Exception as err:  # noqa: BLE001 — recorded and reported, the grid goes on
            store.write_failure(rid, f"{spec.label()}\n{canonical_json(spec.key)}\n\n{traceback.format_exc()}")
            return {**result, "status": "failed", "seconds": time.perf_counter() - t0, "error": _error(err)}
    store.clear_failure(rid)
    return {
        **result,
        "status": "done",
        "seconds": time.perf_counter() - t0,
        "training_check": record["training_check"],
    }


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# --------------------------------------------------------------- the grid
@dataclass
class RunSummary:
    """What `run_specs` / `run_experiment` did.

    ``by_others`` counts runs this call found claimed by another process and that the
    other process then finished. ``not_trained`` lists the results of the runs done here
    whose fit did not train (stored, scored, and flagged in the report).
    """

    results_dir: Path
    planned: int
    already_done: int
    done: int = 0
    by_others: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    not_trained: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    run_seconds: dict[str, float] = field(default_factory=dict)


def prepare(
    config: ExperimentConfig, specs: list[RunSpec], store: ResultsStore, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Load every dataset once, generate missing nulls, save the splits; → manifest datasets.

    Each dataset's entry records ``nulls_files`` (family label → file, relative to the
    results folder) and ``nulls_file``, the first family's file.
    """
    fingerprints: dict[str, Any] = {}
    for dataset in config.datasets:
        brain = source_brain(dataset, config.gene_order)
        fingerprints[dataset] = {**dataset_fingerprint(brain), "gene_order": config.gene_order}
        used = {s.null_family for s in specs if s.dataset == dataset and s.input == "null"}
        files = {}
        for family, settings in config.null_families().items():
            if family in used:
                path = ensure_nulls(store, dataset, settings, config.gene_order, log=log)
                files[family] = str(path.relative_to(store.root))
        if files:
            fingerprints[dataset]["nulls_files"] = files
            fingerprints[dataset]["nulls_file"] = next(iter(files.values()))
        for kind in sorted({s.split_type for s in specs if s.dataset == dataset}):
            # null runs may use more repeats than the true runs (`grid.null_repeats`)
            repeats = 1 + max(s.repeat for s in specs if s.dataset == dataset and s.split_type == kind)
            split_path = store.splits_path(
                dataset,
                kind,
                gene_order=config.gene_order,
                repeats=repeats,
                folds=config.folds,
                seed=config.seed,
            )
            if not split_path.exists():
                splits = make_splits(brain, kind, n_repeats=repeats, n_folds=config.folds, seed=config.seed)
                split_path.parent.mkdir(parents=True, exist_ok=True)
                save_splits(splits, split_path)
    return fingerprints


def check_datasets_unchanged(config: ExperimentConfig, store: ResultsStore) -> None:
    """Refuse to resume into a folder whose manifest recorded other data for a dataset.

    Finished runs are keyed by the dataset's *name*, so a changed expression or connectome
    file would otherwise be silently mixed with runs on the old contents. Compares the
    previous manifest's ``datasets[d]["X_sha256"]`` and ``["Y_sha256"]`` with the data
    resolved now (content-keyed, so an edited file is re-read); raises ValueError on any
    difference.
    """
    old = store.read_manifest().get("datasets", {})
    for dataset in config.datasets:
        before = old.get(dataset)
        if not before or before.get("gene_order", "as_given") != config.gene_order:
            continue  # another gene order permutes X's columns legitimately (its runs have other keys)
        now = dataset_fingerprint(source_brain(dataset, config.gene_order))
        changed = [f for f in ("X_sha256", "Y_sha256") if f in before and before[f] != now[f]]
        if changed:
            detail = ", ".join(f"{f} {before[f]} → {now[f]}" for f in changed)
            raise ValueError(
                f"{store.manifest_path}: dataset {dataset!r} changed since its runs in this folder were made "
                f"(field 'datasets.{dataset}': {detail}); refusing to resume — use a new results folder"
            )


def run_experiment(
    config: ExperimentConfig,
    results_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    scheduler: Any = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    only: Mapping[str, Iterable[Any]] | None = None,
) -> RunSummary:
    """Run every not-yet-done cell of ``config``'s grid (or of a slice of it) into ``results_dir``.

    Parameters
    ----------
    config : ExperimentConfig
    results_dir : path
        Results folder (`ResultsStore`); an interrupted run folder is resumed, and other
        processes may work on the same folder at once (runs are claimed).
    jobs : int
        Local worker processes (joblib, loky backend); 1 runs in this process.
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) or client; when given, runs are
        submitted to that cluster instead of joblib.
    progress : bool
        Show a tqdm bar over the grid with the last run's wall time.
    log : callable
        Receives one line per event (a failed run, the slice run).
    only : mapping of field name to values, optional
        Run only this slice of the grid (`spatiomol.experiments.grid.select_runs`), e.g.
        ``{"repeat": [1], "model": ["smt-cls"]}``. The manifest still records the whole
        grid, so slices run into one folder (at once or one after another) add up to the
        whole experiment and its report; narrowing ``config.models`` instead would make
        the manifest, and so the report, forget the other models' runs.

    Returns
    -------
    RunSummary
        Counts over the slice.
    """
    config.validate()  # e.g. an unknown null family: a ValueError before any run or null is made
    store = ResultsStore(results_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    grid = build_grid(config)
    specs = select_runs(grid, only)
    if only:
        named = "; ".join(f"{k}={','.join(map(str, [v] if isinstance(v, str | int) else v))}" for k, v in only.items())
        log(f"grid slice {named}: {len(specs)} of {len(grid)} runs")
    check_datasets_unchanged(config, store)
    fingerprints = prepare(config, specs, store, log=log)
    families = config.null_families()
    store.write_manifest(
        config.to_dict(),
        datasets=fingerprints,
        seeds={
            "root": config.seed,
            "nulls": {family: settings["seed"] for family, settings in families.items()},
            "model_seed": "sha256(['model', dataset, model, split, repeat, fold, seed])[:4]",
            "permutation_seed": "sha256(['permutation', dataset, split, repeat, fold, seed])[:4]",
        },
        extra={
            "planned_runs": len(grid),
            "run_ids": sorted(s.run_id for s in grid),
            "grid_config": config.to_dict(),
            "null_families": families,
        },
    )
    return run_specs(
        specs, store, jobs=jobs, scheduler=scheduler, progress=progress, log=log, save_models=config.save_models
    )


def run_specs(
    specs: Sequence[RunSpec],
    store: ResultsStore,
    *,
    jobs: int = 1,
    scheduler: Any = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_models: bool = False,
) -> RunSummary:
    """Execute every not-yet-stored run of ``specs`` (grid or transfer) into ``store``.

    Runs another process has claimed are waited for, and computed here if their claimant
    dies (its claim goes stale). Parameters as in `run_experiment`; ``save_models`` saves
    each fitted model (`save_run_model`).
    """
    done_before = store.done_ids()
    todo = [s for s in specs if s.run_id not in done_before]
    summary = RunSummary(results_dir=store.root, planned=len(specs), already_done=len(specs) - len(todo))
    t0 = time.perf_counter()
    bar = tqdm(total=len(specs), initial=summary.already_done, disable=not progress, unit="run", dynamic_ncols=True)
    try:
        pending = todo
        while pending:
            claimed: list[RunSpec] = []
            by_id = {s.run_id: s for s in pending}
            for result in _results(pending, str(store.root), jobs=jobs, scheduler=scheduler, save_models=save_models):
                status = result["status"]
                if status == "claimed":
                    claimed.append(by_id[result["run_id"]])
                    continue
                bar.set_postfix_str(f"{result['label']} {result['seconds']:.1f}s {status}", refresh=False)
                bar.update(1)
                if status == "failed":
                    summary.failed.append(result)
                    log(f"FAILED {result['label']}: {result['error']}")
                elif status == "done":
                    summary.done += 1
                    if result["training_check"].startswith(CHECK_NOT_TRAINED):
                        summary.not_trained.append(result)
                        log(f"NOT TRAINED {result['label']}: {result['training_check']}")
                    summary.run_seconds[result["label"]] = result["seconds"]
                else:  # stored by another process meanwhile
                    summary.by_others += 1
            pending = _wait_for_claims(claimed, store, bar, summary)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _wait_for_claims(claimed: list[RunSpec], store: ResultsStore, bar: Any, summary: RunSummary) -> list[RunSpec]:
    """Wait until each claimed run is stored by its claimant or free again; → the free ones.

    A run is free again when its claimant died or failed (no part, no live claim); the
    free runs are returned with those still being computed elsewhere, to be tried again.
    """
    while claimed:
        time.sleep(CLAIM_POLL_SECONDS)
        waiting, free = [], []
        for spec in claimed:
            if store.is_done(spec.run_id):
                summary.by_others += 1
                bar.update(1)
            elif store.claim_active(spec.run_id):
                waiting.append(spec)
            else:
                free.append(spec)
        if free:
            return free + waiting
        claimed = waiting
    return []


def _results(
    todo: list[RunSpec], results_dir: str, *, jobs: int, scheduler: Any, save_models: bool
) -> Iterable[dict[str, Any]]:
    if not todo:
        return
    if scheduler is not None:
        from dask.distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(execute_run, todo, results_dir=results_dir, save_model=save_models, pure=False)
            labels = {f.key: s for f, s in zip(futures, todo)}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as err:  # noqa: BLE001 — e.g. KilledWorker after repeated worker deaths
                    spec = labels[future.key]
                    yield {
                        "run_id": spec.run_id,
                        "label": spec.label(),
                        "status": "failed",
                        "seconds": 0.0,
                        "error": _error(err),
                    }
        finally:
            if client is not scheduler:
                client.close()
        return
    if jobs == 1:
        for spec in todo:
            yield execute_run(spec, results_dir, save_models)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(execute_run)(spec, results_dir, save_models) for spec in todo)


def summary_text(summary: RunSummary) -> str:
    """A few lines for the terminal: counts, failures and time per run."""
    others = f", {summary.by_others} run by other processes" if summary.by_others else ""
    lines = [
        f"results: {summary.results_dir}",
        f"runs: {summary.planned} planned, {summary.already_done} already done, {summary.done} run now, "
        f"{len(summary.failed)} failed{others}, {summary.seconds:.1f} s",
    ]
    if summary.not_trained:
        lines.append(f"WARNING: {len(summary.not_trained)} fits did not train (flagged in the store and the report)")
    if summary.run_seconds:
        t = np.array(list(summary.run_seconds.values()))
        lines.append(f"seconds per run: median {np.median(t):.2f}, max {t.max():.2f}")
    for f in summary.failed[:10]:
        lines.append(f"  failed: {f['label']}: {f['error']}")
    for f in summary.not_trained[:10]:
        lines.append(f"  not trained: {f['label']}: {f['training_check']}")
    return "\n".join(lines)


__all__ = [
    "FittedRun",
    "RunData",
    "RunSummary",
    "check_datasets_unchanged",
    "check_nulls_expression",
    "compute_run",
    "dataset_fingerprint",
    "ensure_nulls",
    "execute_run",
    "fit_run",
    "input_brain",
    "load_run_model",
    "run_data",
    "run_experiment",
    "run_spec",
    "run_specs",
    "save_run_model",
    "shared_gene_brains",
    "source_brain",
    "summary_text",
]
