"""Experiments: the grid (datasets × models × splits × repeats × folds × inputs), a
resumable append-only results store, input preparation, one run, the runner (joblib or
Dask) and cross-dataset transfer.

Typical use::

    from spatiomol.experiments import demo_config_path, load_config, run_experiment
    run_experiment(load_config(demo_config_path()), "runs/demo", jobs=2)

See ``docs/experiments.md``.
"""

from spatiomol.experiments.config import TABLE3_VARIANTS, ExperimentConfig, demo_config_path, load_config
from spatiomol.experiments.execute import fit_run, load_run_model, run_spec
from spatiomol.experiments.grid import SLICE_FIELDS, RunSpec, build_grid, null_count, select_runs
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore, run_id
from spatiomol.experiments.transfer import run_transfer, shared_gene_brains, transfer_table

__all__ = [
    "ExperimentConfig",
    "ResultsStore",
    "RunSpec",
    "SLICE_FIELDS",
    "TABLE3_VARIANTS",
    "build_grid",
    "demo_config_path",
    "fit_run",
    "load_config",
    "load_run_model",
    "null_count",
    "run_experiment",
    "run_id",
    "run_spec",
    "run_transfer",
    "select_runs",
    "shared_gene_brains",
    "transfer_table",
]
