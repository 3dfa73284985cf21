"""Fixtures shared by the bilinear-family tests."""

from __future__ import annotations

import pytest

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.splits import make_splits


@pytest.fixture(scope="module")
def bilinear_brain():
    """A planted bilinear rule; more regions than genes, so a g × g interaction is identifiable."""
    return make_synthetic_brain(80, 20, rule="bilinear", rank=3, seed=1)


@pytest.fixture(scope="module")
def bilinear_split(bilinear_brain):
    return make_splits(bilinear_brain, "random", n_repeats=1, n_folds=4, seed=0)[0]
