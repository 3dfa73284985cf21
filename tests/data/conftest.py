"""Fixtures of the data-layer tests: a user's files written from a synthetic brain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spatiomol.data.synthetic import make_synthetic_brain


def write_user_files(brain, folder: Path, *, labelled_connectome: bool = True) -> dict[str, Path]:
    """Write a brain as a user would: expression CSV, connectome CSV, regions CSV, subjects NPY."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "expression": folder / "expression.csv",
        "connectome": folder / "connectome.csv",
        "regions": folder / "regions.csv",
    }
    expr = pd.DataFrame(brain.X, columns=list(brain.genes))
    expr.insert(0, "label", brain.labels)
    expr.to_csv(paths["expression"], index=False)
    if labelled_connectome:
        pd.DataFrame(brain.Y, index=brain.labels, columns=brain.labels).to_csv(paths["connectome"])
    else:
        np.savetxt(paths["connectome"], brain.Y, delimiter=",")
    brain.regions.to_csv(paths["regions"], index=False)
    if brain.subjects is not None:
        paths["subjects"] = folder / "subjects.npy"
        np.save(paths["subjects"], brain.subjects)
    return paths


@pytest.fixture
def write_files():
    """The `write_user_files` helper (test modules here are not a package, so no import)."""
    return write_user_files


@pytest.fixture
def small_brain():
    """12 regions, 9 genes, 3 subjects: small enough to edit by hand in tests."""
    return make_synthetic_brain(n_regions=12, n_genes=9, n_subjects=3, seed=3)


@pytest.fixture
def user_files(tmp_path, small_brain):
    return write_user_files(small_brain, tmp_path / "user")
