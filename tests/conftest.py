"""Shared fixtures. Bundled data come from the local mirror (../shared/data), never the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "SPATIOMOL_DATA_MIRROR" not in os.environ and (MIRROR / "SHA256SUMS").exists():
    os.environ["SPATIOMOL_DATA_MIRROR"] = str(MIRROR)


def pytest_configure(config):
    # Tests train tiny models: one intra-op thread avoids OpenMP barrier stalls when the
    # machine is oversubscribed (seen: 0.6 s → 100 s for a 780-batch loop) and keeps
    # timings stable. Library code leaves the user's thread settings alone.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    path = os.environ.get("SPATIOMOL_DATA_MIRROR")
    assert path and Path(path).exists(), "SPATIOMOL_DATA_MIRROR must point at the data mirror"
    return Path(path)
