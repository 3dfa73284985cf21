"""A results folder is tied to the data it was made from. A user who edits their CSV files
between two runs in one process (a notebook, a long-lived Dask worker) gets the new data
(caches are keyed by content), and a folder made from the old data refuses to be resumed
(cached nulls, finished runs) instead of silently mixing the two."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from spatiomol.data.sources import resolve_source
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation import evaluate, make_splits
from spatiomol.experiments import runner
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.store import ResultsStore
from spatiomol.models import registry
from spatiomol.nulls import NullSet

NULLS = {"n": 100, "top": 3, "method": "cge", "seed": 0, "min_moved": 0.9}


def _digest(a: np.ndarray) -> str:
    """The manifest's array hash, recomputed: sha256 of dtype, shape and bytes, 16 hex characters."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def _sha(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


@pytest.fixture
def user_dataset(tmp_path):
    """A user's dataset: expression and connectome CSVs plus a regions CSV, named by a YAML.

    Returns the YAML path and a function that rewrites the CSVs from arrays, as a user
    editing their files would.
    """
    brain = make_synthetic_brain(40, 30, rule="bilinear", decay_weight=0.3, seed=3)
    folder = tmp_path / "mine"
    folder.mkdir()
    brain.regions.to_csv(folder / "regions.csv", index=False)

    def write(X: np.ndarray, Y: np.ndarray) -> None:
        expression = pd.DataFrame(X, columns=list(brain.genes))
        expression.insert(0, "label", brain.labels)
        expression.to_csv(folder / "expression.csv", index=False, float_format="%.17g")
        pd.DataFrame(Y).to_csv(folder / "connectome.csv", index=False, header=False, float_format="%.17g")

    write(brain.X, brain.Y)
    spec = folder / "mine.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"name": "mine", "expression": "expression.csv", "connectome": "connectome.csv", "regions": "regions.csv"}
        )
    )
    return str(spec), brain, write


def _config(dataset: str) -> ExperimentConfig:
    return ExperimentConfig(
        name="t",
        datasets=[dataset],
        models=["cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
        seed=7,
        nulls=NULLS,
    )


def _direct_pearsons(dataset: str) -> list[float]:
    """Pearson r of ``cm`` fitted directly on each fold of the dataset as read now (no cache)."""
    b = resolve_source(dataset)
    out = []
    for split in make_splits(b, "random", n_repeats=1, n_folds=4, seed=7):
        i, j = split.test_pairs()
        model = registry.make_model("cm").fit(b, split.train)
        rows = evaluate(b, i, j, model.predict(b, i, j))
        out.append(next(r["value"] for r in rows if r["metric"] == "pearson" and r["stratum"] == "all"))
    return out


def _stored_pearsons(folder) -> list[float]:
    df = ResultsStore(folder).load()
    sel = df[(df["metric"] == "pearson") & (df["stratum"] == "all")].sort_values("fold")
    return sel["value"].tolist()


def test_an_edited_csv_gives_new_numbers_in_a_new_folder_and_is_refused_in_the_old(tmp_path, user_dataset):
    dataset, brain, write = user_dataset
    config = _config(dataset)
    first = runner.run_experiment(config, tmp_path / "before", progress=False, log=lambda m: None)
    assert first.done == 4 and not first.failed
    before = _stored_pearsons(tmp_path / "before")
    np.testing.assert_allclose(before, _direct_pearsons(dataset), rtol=1e-9)
    recorded = ResultsStore(tmp_path / "before").read_manifest()["datasets"][dataset]

    # the user edits their files; same process, so any cache keyed by the path would be stale
    rng = np.random.default_rng(1)
    new_x = brain.X + 0.5 * rng.standard_normal(brain.X.shape)
    new_y = brain.Y.copy()
    new_y[0, 1] = new_y[1, 0] = new_y[0, 1] + 0.1
    write(new_x, new_y)

    after = runner.run_experiment(config, tmp_path / "after", progress=False, log=lambda m: None)
    assert after.done == 4 and not after.failed
    got = _stored_pearsons(tmp_path / "after")
    np.testing.assert_allclose(got, _direct_pearsons(dataset), rtol=1e-9)
    assert not np.allclose(got, before)
    fresh = ResultsStore(tmp_path / "after").read_manifest()["datasets"][dataset]
    assert fresh["Y_sha256"] == _digest(resolve_source(dataset).Y) != recorded["Y_sha256"]

    # the old folder refuses the edited data and is left as it was
    old = ResultsStore(tmp_path / "before")
    with pytest.raises(ValueError) as info:
        runner.run_experiment(config, tmp_path / "before", progress=False, log=lambda m: None)
    message = str(info.value)
    assert str(old.manifest_path) in message and "X_sha256" in message and "Y_sha256" in message
    assert f"{recorded['Y_sha256']} → {fresh['Y_sha256']}" in message and "new results folder" in message
    assert json.loads(old.manifest_path.read_text())["datasets"][dataset]["Y_sha256"] == recorded["Y_sha256"]
    assert _stored_pearsons(tmp_path / "before") == before

    # editing the files back makes the old folder resumable again (nothing left to run)
    write(brain.X, brain.Y)
    again = runner.run_experiment(config, tmp_path / "before", progress=False, log=lambda m: None)
    assert (again.already_done, again.done) == (4, 0)


def test_cached_nulls_of_other_expression_are_refused(tmp_path, user_dataset):
    dataset, brain, write = user_dataset
    store = ResultsStore(tmp_path / "runs")
    path = runner.ensure_nulls(store, dataset, NULLS, log=lambda m: None)
    assert NullSet.load(path).metadata["expression_sha256"] == _sha(resolve_source(dataset).X)
    assert runner.ensure_nulls(store, dataset, NULLS, log=lambda m: None) == path  # same data: reused

    new_x = np.random.default_rng(0).standard_normal(brain.X.shape)
    write(new_x, brain.Y)
    reread = resolve_source(dataset).X
    with pytest.raises(ValueError) as info:
        runner.ensure_nulls(store, dataset, NULLS, log=lambda m: None)
    message = str(info.value)
    assert str(path) in message and "'expression_sha256'" in message and _sha(reread)[:16] in message
    assert "new results folder" in message
