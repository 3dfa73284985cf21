"""Fixtures of the null tests: the real hcp-s100 brain and its cortex from the atlas table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def hcp_s100():
    from spatiomol.data.datasets import load_dataset

    return load_dataset("hcp-s100")


@pytest.fixture(scope="session")
def atlas_s100_cortex(data_mirror):
    """(coords (100, 3) mm, hemisphere (100,) L/R) of the Schaefer-100 cortex, atlas order."""
    table = pd.read_csv(data_mirror / "atlas" / "atlas-4S156Parcels_dseg_reformatted.csv")
    cortex = table[table["structure"] == "cortex"]
    coords = cortex[["mni_x", "mni_y", "mni_z"]].to_numpy(dtype=np.float64)
    return coords, cortex["hemisphere"].to_numpy(dtype=str)


@pytest.fixture
def neuromaps_with_rotations(monkeypatch):
    """neuromaps' gen_spinsamples (Váša by default), fed a given sequence of (left, right) rotations."""
    from neuromaps.nulls import spins as neuromaps_spins

    def run(coords, hemiid, left, right, method="vasa", **kwargs):
        queue = iter(list(zip(left, right)))
        monkeypatch.setattr(neuromaps_spins, "_gen_rotation", lambda seed=None: next(queue))
        return neuromaps_spins.gen_spinsamples(
            coords,
            hemiid,
            n_rotate=len(left),
            method=method,
            check_duplicates=False,
            return_cost=True,
            **kwargs,
        )

    return run
