"""Experiments: the grid (datasets × models × splits × repeats × folds × inputs), a
resumable append-only results store, the runner (joblib or Dask) and cross-dataset transfer.

Typical use::

    from spatiomol.experiments import load_config, run_experiment
    run_experiment(load_config("configs/demo.yaml"), "runs/demo", jobs=2)

See ``docs/experiments.md``.
"""

from spatiomol.experiments.config import TABLE3_VARIANTS, ExperimentConfig, load_config
from spatiomol.experiments.grid import RunSpec, build_grid, null_index_for
from spatiomol.experiments.runner import load_results, load_source, run_experiment
from spatiomol.experiments.store import ResultsStore, run_id
from spatiomol.experiments.transfer import run_transfer, shared_gene_brains, transfer_table

__all__ = [
    "ExperimentConfig",
    "ResultsStore",
    "RunSpec",
    "TABLE3_VARIANTS",
    "build_grid",
    "load_config",
    "load_results",
    "load_source",
    "null_index_for",
    "run_experiment",
    "run_id",
    "run_transfer",
    "shared_gene_brains",
    "transfer_table",
]
