"""Run an experiment grid into a results store, locally (joblib) or on a Dask cluster.

For each `RunSpec`: load the brain (bundled name, user YAML or ``synthetic:...``), take
its split (``spatiomol.evaluation.make_splits``), swap in the requested expression (true,
CGE-matched null, permuted), select hyperparameters by nested inner CV
(``spatiomol.evaluation.tuning.select_and_fit``) or fit the default configuration,
predict the test edges, score them (``spatiomol.evaluation.evaluate``) and write the rows
atomically. Each worker writes its own run, so whatever finished survives a kill.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.grid import RunSpec, build_grid, random_permutation
from spatiomol.experiments.store import ResultsStore
from spatiomol.hashing import array_digest, canonical_json, expression_sha256, json_sha256, to_jsonable

# per-process caches (each joblib / Dask worker keeps its own)
_BRAINS: dict[tuple[str, str], Brain] = {}
_SPLITS: dict[tuple[str, str, str, int, int, int], list] = {}
_NULLS: dict[str, np.ndarray] = {}


# --------------------------------------------------------------------- loading
def _parse_scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def load_source(source: str, gene_order: str = "as_given") -> Brain:
    """The `Brain` named by a dataset source string (cached per process).

    Parameters
    ----------
    source : str
        A bundled dataset name (``"hcp-s100"``), a path to a user dataset YAML, or
        ``"synthetic:n_regions=40,n_genes=30,seed=1"`` (keyword arguments of
        `spatiomol.data.synthetic.make_synthetic_brain`).
    gene_order : str
        ``"as_given"`` or a method of `spatiomol.data.genome.order_genes`.
    """
    key = (source, gene_order)
    if key in _BRAINS:
        return _BRAINS[key]
    if source.startswith("synthetic"):
        from spatiomol.data.synthetic import make_synthetic_brain

        _, _, arg_text = source.partition(":")
        kwargs: dict[str, Any] = {}
        for item in filter(None, (a.strip() for a in arg_text.split(","))):
            name, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"dataset {source!r}: expected 'synthetic:key=value,...', got item {item!r}")
            kwargs[name.strip()] = _parse_scalar(value.strip())
        kwargs.setdefault("name", source)
        try:
            brain = make_synthetic_brain(**kwargs)
        except TypeError as err:
            raise ValueError(f"dataset {source!r}: {err}") from err
    else:
        from spatiomol.data.io import load_brain

        brain = load_brain(source)
    if gene_order != "as_given":
        from spatiomol.data.genome import order_genes

        brain = order_genes(brain, gene_order)
    _BRAINS[key] = brain
    return brain


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


def get_split(brain: Brain, spec: RunSpec):
    """Split (``spec.repeat``, ``spec.fold``) of ``spec.split_type`` for this brain."""
    from spatiomol.evaluation import make_splits

    settings = spec.settings_dict
    n_folds = int(settings["folds"])
    key = (spec.dataset, settings["gene_order"], spec.split_type, spec.repeat, n_folds, spec.seed)
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
def _file_tag(dataset: str, *settings: Any) -> str:
    """A file-name-safe tag: the dataset's name plus a hash of the source and settings."""
    digest = json_sha256([dataset, *settings])[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(dataset).name)[:40]
    return f"{safe}-{digest}"


def nulls_file(store: ResultsStore, dataset: str, nulls_settings: dict[str, Any], gene_order: str) -> Path:
    """Where the run folder caches a dataset's nulls (named by dataset and settings hash)."""
    return store.nulls_dir / f"{_file_tag(dataset, nulls_settings, gene_order)}.npz"


def nulls_from_settings(brain, settings: dict[str, Any]):
    """`spatiomol.nulls.generate_nulls` with an experiment's ``nulls`` settings."""
    from spatiomol.experiments.config import NULL_DEFAULTS
    from spatiomol.nulls import generate_nulls

    settings = {**NULL_DEFAULTS, **settings}
    return generate_nulls(
        brain,
        n=int(settings["n"]),
        top=int(settings["top"]),
        seed=int(settings["seed"]),
        method=str(settings["method"]),
        min_moved=float(settings["min_moved"]),
    )


def ensure_nulls(
    store: ResultsStore,
    dataset: str,
    nulls_settings: dict[str, Any],
    gene_order: str = "as_given",
    log: Callable[[str], None] = print,
) -> Path:
    """Generate (once) and cache the top-K CGE-matched nulls of ``dataset``; return the file.

    Uses `spatiomol.nulls.generate_nulls` and `NullSet.save`; an existing file is reused
    only for the data it was made from: its region labels must match the brain's, and its
    ``metadata["expression_sha256"]`` the brain's current expression
    (`spatiomol.hashing.expression_sha256`), else a ValueError (nulls selected
    by CGE match on other expression are not matched nulls of this one).
    """
    from spatiomol.nulls import NullSet

    path = nulls_file(store, dataset, nulls_settings, gene_order)
    brain = load_source(dataset, gene_order)
    if path.exists():
        nullset = NullSet.load(path)
        nullset.check_brain(brain)
        check_nulls_expression(nullset, brain, path, dataset)
        if nullset.top < int(nulls_settings["top"]):
            raise ValueError(f"{path}: holds {nullset.top} nulls, expected {nulls_settings['top']}")
        return path
    log(f"generating {nulls_settings['n']} spins for {dataset} (top {nulls_settings['top']}) ...")
    t0 = time.perf_counter()
    nulls_from_settings(brain, nulls_settings).save(path)  # atomic (tmp file + os.replace)
    log(f"nulls for {dataset}: {time.perf_counter() - t0:.1f} s → {path}")
    return path


def check_nulls_expression(nullset, brain: Brain, path: Path, dataset: str) -> None:
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


def _null_permutation(store: ResultsStore, spec: RunSpec) -> np.ndarray:
    from spatiomol.nulls import NullSet

    settings = spec.settings_dict
    path = nulls_file(store, spec.dataset, settings["nulls"], settings["gene_order"])
    if str(path) not in _NULLS:
        if not path.exists():
            raise FileNotFoundError(f"{path}: nulls for {spec.dataset} not generated (run ensure_nulls first)")
        _NULLS[str(path)] = NullSet.load(path).permutations
    return _NULLS[str(path)][spec.null_index]


def input_brain(brain: Brain, spec: RunSpec, store: ResultsStore) -> Brain:
    """The brain a run's model sees: true, CGE-null or randomly permuted expression."""
    if spec.input == "true":
        return brain
    if spec.input == "null":
        perm = _null_permutation(store, spec)
        return brain.permute_expression(perm, note=f"CGE-matched null #{spec.null_index}")
    if spec.input == "permuted":
        perm = random_permutation(brain.n_regions, spec.derived_seed("permutation"))
        return brain.permute_expression(perm, note="uniform random permutation")
    raise ValueError(f"{spec.label()}: unknown input {spec.input!r}; expected true, null or permuted")


# ------------------------------------------------------------------ one run
def _with_seed(model_name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Add ``seed`` / ``random_state`` when the model takes one and none is fixed."""
    from spatiomol.models import registry

    default, _ = registry.search_space(model_name)
    accepted = set(registry.model_class(model_name)._get_param_names()) & set(default)
    out = dict(params)
    for name in ("seed", "random_state"):
        if name in accepted and name not in out:
            out[name] = seed
    return out


def fit_run(spec: RunSpec, brain: Brain, split) -> tuple[Any, dict[str, Any]]:
    """Select (nested inner CV) or take the default configuration and fit; → (model, params)."""
    from spatiomol.models import registry

    settings = spec.settings_dict
    seed = spec.derived_seed("model")
    fixed = dict(settings["model_params"])
    if settings["tuning"]:
        from spatiomol.evaluation.tuning import select_and_fit

        # candidates depend on the root seed only (the same on every split, as in the
        # protocol); the model's initialisation seed is the run's (shared by its true and
        # null runs), as for untuned runs
        model, params, _ = select_and_fit(
            spec.model,
            brain,
            split,
            n_configs=int(settings["n_configs"]),
            seed=spec.seed,
            model_params=_with_seed(spec.model, fixed, seed),
        )
        return model, dict(params)
    default, _ = registry.search_space(spec.model)
    params = _with_seed(spec.model, {**default, **fixed}, seed)
    model = registry.make_model(spec.model, **params)
    model.fit(brain, split.train)
    return model, model.get_params()


def compute_run(spec: RunSpec, store: ResultsStore) -> dict[str, Any]:
    """Fit and score one run; returns the fields `ResultsStore.write_run` takes."""
    from spatiomol.evaluation import evaluate

    brain = load_source(spec.dataset, spec.settings_dict["gene_order"])
    split = get_split(brain, spec)
    seen = input_brain(brain, spec, store)
    t0 = time.perf_counter()
    model, params = fit_run(spec, seen, split)
    fit_seconds = time.perf_counter() - t0
    i, j = pairs_within(split.test)
    y_pred = model.predict(seen, i, j)
    rows = evaluate(brain, i, j, y_pred)
    return {
        "metric_rows": rows,
        "hyperparameters": params,
        "n_parameters": int(getattr(model, "n_parameters_", -1)),
        "fit_seconds": fit_seconds,
        "predictions": {"i": i, "j": j, "y_pred": y_pred, "y_true": brain.targets(i, j)},
    }


def execute_run(spec: RunSpec, results_dir: str) -> dict[str, Any]:
    """Compute and store one run unless it is done; never raises (failures are recorded).

    Returns
    -------
    dict with ``run_id``, ``label``, ``status`` ("done", "skipped" or "failed"),
    ``seconds`` (wall time of the whole run) and ``error`` (failures only).
    """
    store = ResultsStore(results_dir)
    rid = spec.run_id
    if store.is_done(rid):
        return {"run_id": rid, "label": spec.label(), "status": "skipped", "seconds": 0.0}
    t0 = time.perf_counter()
    try:
        out = compute_run(spec, store)
        store.write_run(spec.key, **out)
    except Exception as err:  # noqa: BLE001 — recorded and reported, the grid goes on
        failure = store.root / "failures" / f"{rid}.txt"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{spec.label()}\n{canonical_json(spec.key)}\n\n{traceback.format_exc()}")
        return {
            "run_id": rid,
            "label": spec.label(),
            "status": "failed",
            "seconds": time.perf_counter() - t0,
            "error": f"{type(err).__name__}: {err}",
        }
    stale = store.root / "failures" / f"{rid}.txt"
    stale.unlink(missing_ok=True)
    return {"run_id": rid, "label": spec.label(), "status": "done", "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------- the grid
@dataclass
class RunSummary:
    """What `run_experiment` did."""

    results_dir: Path
    planned: int
    already_done: int
    done: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    run_seconds: dict[str, float] = field(default_factory=dict)


def prepare(
    config: ExperimentConfig, specs: list[RunSpec], store: ResultsStore, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Load every dataset once, generate missing nulls, save the splits; → manifest datasets."""
    from spatiomol.evaluation import make_splits

    fingerprints: dict[str, Any] = {}
    for dataset in config.datasets:
        brain = load_source(dataset, config.gene_order)
        fingerprints[dataset] = {**dataset_fingerprint(brain), "gene_order": config.gene_order}
        needs_nulls = any(s.dataset == dataset and s.input == "null" for s in specs)
        if needs_nulls:
            path = ensure_nulls(store, dataset, config.nulls, config.gene_order, log=log)
            fingerprints[dataset]["nulls_file"] = str(path.relative_to(store.root))
        for kind in sorted({s.split_type for s in specs if s.dataset == dataset}):
            tag = _file_tag(dataset, config.gene_order, kind, config.repeats, config.folds, config.seed)
            split_path = store.root / "splits" / f"{tag}-{kind}.npz"
            if not split_path.exists():
                from spatiomol.evaluation import save_splits

                splits = make_splits(brain, kind, n_repeats=config.repeats, n_folds=config.folds, seed=config.seed)
                split_path.parent.mkdir(parents=True, exist_ok=True)
                save_splits(splits, split_path)
    return fingerprints


def check_datasets_unchanged(config: ExperimentConfig, store: ResultsStore) -> None:
    """Refuse to resume into a folder whose manifest recorded other data for a dataset.

    Finished runs are keyed by the dataset's *name*, so a changed expression or connectome
    file would otherwise be silently mixed with runs on the old contents. Compares the
    previous manifest's ``datasets[d]["X_sha256"]`` and ``["Y_sha256"]`` with the data
    loaded now; raises ValueError on any difference.
    """
    old = store.read_manifest().get("datasets", {})
    for dataset in config.datasets:
        before = old.get(dataset)
        if not before or before.get("gene_order", "as_given") != config.gene_order:
            continue  # another gene order permutes X's columns legitimately (its runs have other keys)
        now = dataset_fingerprint(load_source(dataset, config.gene_order))
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
) -> RunSummary:
    """Run every not-yet-done cell of ``config``'s grid into ``results_dir``.

    Parameters
    ----------
    config : ExperimentConfig
    results_dir : path
        Results folder (`ResultsStore`); an interrupted run folder is resumed.
    jobs : int
        Local worker processes (joblib, loky backend); 1 runs in this process.
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) or client; when given, runs are
        submitted to that cluster instead of joblib.
    progress : bool
        Show a tqdm bar over the grid with the last run's wall time.

    Returns
    -------
    RunSummary
    """
    store = ResultsStore(results_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    specs = build_grid(config)
    check_datasets_unchanged(config, store)
    done_before = store.done_ids()
    todo = [s for s in specs if s.run_id not in done_before]
    summary = RunSummary(results_dir=store.root, planned=len(specs), already_done=len(specs) - len(todo))
    fingerprints = prepare(config, specs, store, log=log)
    store.write_manifest(
        config.to_dict(),
        datasets=fingerprints,
        seeds={
            "root": config.seed,
            "nulls": config.nulls["seed"],
            "model_seed": "sha256(['model', dataset, model, split, repeat, fold, seed])[:4]",
            "permutation_seed": "sha256(['permutation', dataset, split, repeat, fold, seed])[:4]",
        },
        extra={"planned_runs": len(specs), "run_ids": sorted(s.run_id for s in specs), "grid_config": config.to_dict()},
    )
    t0 = time.perf_counter()
    for result in _execute_all(
        todo,
        str(store.root),
        jobs=jobs,
        scheduler=scheduler,
        progress=progress,
        total=len(specs),
        initial=summary.already_done,
    ):
        if result["status"] == "failed":
            summary.failed.append(result)
            log(f"FAILED {result['label']}: {result['error']}")
        elif result["status"] == "done":
            summary.done += 1
            summary.run_seconds[result["label"]] = result["seconds"]
    summary.seconds = time.perf_counter() - t0
    return summary


def _execute_all(
    todo: list[RunSpec], results_dir: str, *, jobs: int, scheduler: Any, progress: bool, total: int, initial: int
) -> Iterable[dict[str, Any]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, disable=not progress, unit="run", dynamic_ncols=True)
    try:
        for result in _results(todo, results_dir, jobs=jobs, scheduler=scheduler):
            bar.set_postfix_str(f"{result['label']} {result['seconds']:.1f}s {result['status']}", refresh=False)
            bar.update(1)
            yield result
    finally:
        bar.close()


def _results(todo: list[RunSpec], results_dir: str, *, jobs: int, scheduler: Any) -> Iterable[dict[str, Any]]:
    if not todo:
        return
    if scheduler is not None:
        from dask.distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(execute_run, todo, results_dir=results_dir, pure=False)
            for future in as_completed(futures):
                yield future.result()
        finally:
            if client is not scheduler:
                client.close()
        return
    if jobs == 1:
        for spec in todo:
            yield execute_run(spec, results_dir)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(execute_run)(spec, results_dir) for spec in todo)


def summary_text(summary: RunSummary) -> str:
    """A few lines for the terminal: counts, failures and time per run."""
    lines = [
        f"results: {summary.results_dir}",
        f"runs: {summary.planned} planned, {summary.already_done} already done, {summary.done} run now, "
        f"{len(summary.failed)} failed, {summary.seconds:.1f} s",
    ]
    if summary.run_seconds:
        t = np.array(list(summary.run_seconds.values()))
        lines.append(f"seconds per run: median {np.median(t):.2f}, max {t.max():.2f}")
    for f in summary.failed[:10]:
        lines.append(f"  failed: {f['label']}: {f['error']}")
    return "\n".join(lines)


def load_results(results_dir: str | os.PathLike):
    """The tidy results table of a run folder (`ResultsStore.load`)."""
    return ResultsStore(results_dir).load()


__all__ = [
    "RunSummary",
    "check_datasets_unchanged",
    "check_nulls_expression",
    "compute_run",
    "dataset_fingerprint",
    "ensure_nulls",
    "execute_run",
    "fit_run",
    "input_brain",
    "load_results",
    "load_source",
    "run_experiment",
    "summary_text",
]
