"""Evaluation protocol: region splits, inner validation, hyperparameter selection and metrics.

See ``docs/evaluation.md`` for every split rule and metric definition.
"""

from spatiomol.evaluation.metrics import evaluate, stratum_masks, summarize
from spatiomol.evaluation.splits import (
    SPLIT_KINDS,
    Split,
    inner_validation,
    load_splits,
    make_splits,
    save_splits,
)

__all__ = [
    "SPLIT_KINDS",
    "Split",
    "evaluate",
    "inner_validation",
    "load_splits",
    "make_splits",
    "save_splits",
    "stratum_masks",
    "summarize",
]
