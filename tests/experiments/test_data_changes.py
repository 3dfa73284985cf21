"""A results folder is tied to the data it was made from: changed expression or connectome
contents are refused (cached nulls, finished runs) instead of being silently reused."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from spatiomol.experiments import runner
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.store import ResultsStore
from spatiomol.nulls import NullSet

SYN = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=3"
NULLS = {"n": 100, "top": 3, "method": "cge", "seed": 0, "min_moved": 0.9}


def _digest(a: np.ndarray) -> str:
    """The manifest's array hash, recomputed: sha256 of dtype, shape and bytes, 16 hex characters."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def _changed(monkeypatch, **arrays):
    """Make `load_source(SYN)` return the same regions with other contents (a user's edited file)."""
    brain = runner.load_source(SYN)
    monkeypatch.setitem(runner._BRAINS, (SYN, "as_given"), brain.replace(**arrays))
    return runner.load_source(SYN)


def test_cached_nulls_of_other_expression_are_refused(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    path = runner.ensure_nulls(store, SYN, NULLS, log=lambda m: None)
    original = runner.load_source(SYN)
    assert (
        NullSet.load(path).metadata["expression_sha256"]
        == hashlib.sha256(np.ascontiguousarray(original.X, dtype=np.float64).tobytes()).hexdigest()
    )
    assert runner.ensure_nulls(store, SYN, NULLS, log=lambda m: None) == path  # same data: reused

    new_x = np.random.default_rng(0).standard_normal(original.X.shape)
    _changed(monkeypatch, X=new_x)
    new_sha = hashlib.sha256(np.ascontiguousarray(new_x, dtype=np.float64).tobytes()).hexdigest()
    with pytest.raises(ValueError) as info:
        runner.ensure_nulls(store, SYN, NULLS, log=lambda m: None)
    message = str(info.value)
    assert str(path) in message and "'expression_sha256'" in message and new_sha[:16] in message
    assert "new results folder" in message


def test_resume_after_the_dataset_changed_is_refused(tmp_path, monkeypatch):
    config = ExperimentConfig(
        name="t",
        datasets=[SYN],
        models=["cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
        seed=7,
        nulls=NULLS,
    )
    first = runner.run_experiment(config, tmp_path, progress=False, log=lambda m: None)
    assert first.done == 4
    store = ResultsStore(tmp_path)
    recorded = store.read_manifest()["datasets"][SYN]
    original = runner.load_source(SYN)
    assert recorded["Y_sha256"] == _digest(original.Y) and recorded["gene_order"] == "as_given"

    # same data: resuming is fine and runs nothing
    again = runner.run_experiment(config, tmp_path, progress=False, log=lambda m: None)
    assert (again.already_done, again.done) == (4, 0)

    new_y = original.Y.copy()
    new_y[0, 1] = new_y[1, 0] = new_y[0, 1] + 0.1
    _changed(monkeypatch, Y=new_y)
    with pytest.raises(ValueError) as info:
        runner.run_experiment(config, tmp_path, progress=False, log=lambda m: None)
    message = str(info.value)
    assert str(store.manifest_path) in message and "Y_sha256" in message and "X_sha256" not in message
    assert f"{recorded['Y_sha256']} → {_digest(new_y)}" in message and "new results folder" in message
    # nothing was overwritten: the manifest still records the original data
    assert json.loads(store.manifest_path.read_text())["datasets"][SYN]["Y_sha256"] == recorded["Y_sha256"]

    # a fresh folder takes the changed data
    fresh = runner.run_experiment(config, tmp_path / "fresh", progress=False, log=lambda m: None)
    assert fresh.done == 4 and not fresh.failed
