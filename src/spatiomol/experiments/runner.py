"""Schedule experiment grids (and transfer pairs) into a results store, locally (joblib) or on Dask.

`run_experiment` prepares a results folder for a configuration's grid (or a slice of
it: each dataset's fingerprint, region table, nulls and splits, `spatiomol.experiments.inputs.prepare`),
writes the manifest and hands the runs to `run_specs`, which executes every not-yet-stored
run (`spatiomol.experiments.execute.execute_run`: claim, compute, store) in this process,
on joblib workers or on a Dask cluster, waits for runs other processes claimed and takes
over those whose claimant died. Several processes (or Dask workers) can share one results
folder.

This module also re-exports, for its callers, the input preparation of
`spatiomol.experiments.inputs` and the one-run functions of `spatiomol.experiments.execute`
(`fit_run`, `load_run_model`, `run_spec`, ...).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.execute import (
    FittedRun,
    RunData,
    compute_run,
    error_text,
    execute_run,
    fit_run,
    load_run_model,
    run_data,
    run_spec,
    save_run_model,
)
from spatiomol.experiments.grid import RunSpec, build_grid, select_runs
from spatiomol.experiments.inputs import (
    check_datasets_unchanged,
    check_nulls_expression,
    check_structural_inputs,
    dataset_fingerprint,
    ensure_nulls,
    input_brain,
    prepare,
    shared_gene_brains,
    split_layouts,
)
from spatiomol.experiments.store import CHECK_NOT_TRAINED, ResultsStore

#: seconds between checks on runs that another process has claimed
CLAIM_POLL_SECONDS = 0.5


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
    check_structural_inputs(config)
    grid = build_grid(config, split_layouts(config))
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
    each fitted model (`ResultsStore.save_model`).
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
                        "error": error_text(err),
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
    "prepare",
    "run_data",
    "run_experiment",
    "run_spec",
    "run_specs",
    "save_run_model",
    "shared_gene_brains",
    "summary_text",
]
