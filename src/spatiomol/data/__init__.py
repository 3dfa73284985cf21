"""Data layer: the `Brain`, bundled datasets, users' files, dataset sources, missing expression, gene order.

See ``docs/data.md`` for formats, conventions and provenance.
"""

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.bundled_files import fetch, list_datasets
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import GENE_ORDERS, order_genes
from spatiomol.data.impute import fill_missing
from spatiomol.data.sources import resolve_source, source_digest, split_source_list
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.data.validation import validate_files

__all__ = [
    "Brain",
    "pairs_within",
    "fetch",
    "list_datasets",
    "load_dataset",
    "validate_files",
    "fill_missing",
    "order_genes",
    "GENE_ORDERS",
    "resolve_source",
    "source_digest",
    "split_source_list",
    "make_synthetic_brain",
]
