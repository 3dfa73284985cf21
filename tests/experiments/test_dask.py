"""Dask with worker *processes*: a grid, a resume, and a worker killed mid-run all end with
exactly the rows of a local run."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest

from spatiomol.data.sources import resolve_source
from spatiomol.evaluation import make_splits
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import TIMING_COLUMNS, ResultsStore

TIMING = list(TIMING_COLUMNS)  # cost is the only field allowed to differ between runs
HERE = Path(__file__).parent


@pytest.fixture
def killer(monkeypatch):
    """The ``killer-cm`` model registered here and in every worker (a Dask preload)."""
    monkeypatch.syspath_prepend(str(HERE))  # spawned workers inherit sys.path
    module = importlib.import_module("dask_killer")
    yield module
    from spatiomol.models import registry

    registry.MODELS.pop(module.NAME, None)


def test_worker_processes_survive_a_killed_worker_and_resume(tmp_path, monkeypatch, killer, make_grid_config):
    from dask.distributed import LocalCluster

    config = ExperimentConfig.from_dict(
        make_grid_config(models=["exp-decay", killer.NAME], splits=["random"], repeats=1, inputs=["true", "null"])
    )
    n_runs = len(build_grid(config))
    local = run_experiment(config, tmp_path / "local", progress=False, log=lambda m: None)
    assert local.done == n_runs and not local.failed
    expected = ResultsStore(tmp_path / "local").load().drop(columns=TIMING)

    # the worker that fits killer-cm on the training regions of random split r0 f2 dies (once)
    brain = resolve_source(config.datasets[0])
    train = make_splits(brain, "random", n_repeats=1, n_folds=4, seed=config.seed)[2].train
    marker = tmp_path / "killed"
    monkeypatch.setenv(killer.MARKER_ENV, str(marker))
    monkeypatch.setenv(killer.TRAIN_ENV, ",".join(map(str, sorted(train))))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "dask"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, preload=[killer.__name__]
    ) as cluster:
        summary = run_experiment(config, out, scheduler=cluster.scheduler_address, progress=False, log=lambda m: None)
        assert marker.exists(), "no worker was killed"
        # runs whose results died with the worker are stored already when Dask recomputes them
        assert summary.done + summary.by_others == n_runs and not summary.failed, summary.failed
        pd.testing.assert_frame_equal(ResultsStore(out).load().drop(columns=TIMING), expected, check_exact=True)
        assert not any(ResultsStore(out).claims_dir.glob("*.claim"))  # the dead worker's claim was taken over

        # resume through the cluster: three runs lost, recomputed, the same rows
        store = ResultsStore(out)
        lost = sorted(store.done_ids())[:3]
        for rid in lost:
            store.part_path(rid).unlink()
        resumed = run_experiment(config, out, scheduler=cluster.scheduler_address, progress=False, log=lambda m: None)
    assert (resumed.already_done, resumed.done, resumed.failed) == (n_runs - 3, 3, [])
    assert set(lost) <= store.done_ids()
    pd.testing.assert_frame_equal(store.load().drop(columns=TIMING), expected, check_exact=True)
