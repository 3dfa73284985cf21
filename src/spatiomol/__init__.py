"""spatiomol: connectivity from gene expression and position, tested against spatiomolecular nulls."""

__version__ = "0.1.0"

from spatiomol.data.brain import Brain, pairs_within  # noqa: E402

__all__ = ["Brain", "pairs_within", "__version__"]
