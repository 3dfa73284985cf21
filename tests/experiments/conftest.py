"""Small synthetic grids for the runner tests (fast models only: exp-decay, cm)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

#: a planted bilinear rule plus distance decay, small enough for sub-second runs
SYNTHETIC = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=3"


def grid_config(**changes) -> dict:
    config = {
        "name": "test-grid",
        "datasets": [SYNTHETIC],
        "models": ["exp-decay", "cm"],
        "splits": ["random", "spatial"],
        "repeats": 2,
        "folds": 4,
        "inputs": ["true", "null", "permuted"],
        "nulls": {"n": 200, "top": 2, "method": "cge", "seed": 0},
        "tuning": False,
        "seed": 7,
    }
    config.update(changes)
    return config


@pytest.fixture(scope="session")
def make_grid_config():
    return grid_config


@pytest.fixture
def config_file(tmp_path):
    def write(**changes) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(grid_config(**changes)))
        return path

    return write


@pytest.fixture(scope="session")
def spatiomol_cli() -> list[str]:
    return [sys.executable, "-m", "spatiomol.cli.main"]
