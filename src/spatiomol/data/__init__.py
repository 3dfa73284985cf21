"""Data layer: the `Brain`, bundled datasets, users' files, missing expression, gene order.

See ``docs/data.md`` for formats, conventions and provenance.
"""

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.datasets import fetch, list_datasets, load_dataset
from spatiomol.data.genome import order_genes
from spatiomol.data.impute import fill_missing
from spatiomol.data.io import load_brain, validate_files
from spatiomol.data.synthetic import make_synthetic_brain

__all__ = [
    "Brain",
    "pairs_within",
    "fetch",
    "list_datasets",
    "load_dataset",
    "load_brain",
    "validate_files",
    "fill_missing",
    "order_genes",
    "make_synthetic_brain",
]
