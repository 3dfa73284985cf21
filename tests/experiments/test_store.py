"""Results store: atomic part files, canonical order, run ids and the manifest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spatiomol.experiments.store import (
    CHECK_NONE,
    CHECK_NOT_TRAINED,
    CHECK_TRAINED,
    KEY_COLUMNS,
    ResultsStore,
    checked_runs,
    run_id,
)
from spatiomol.hashing import to_jsonable


def _key(**changes):
    key = {
        "dataset": "d",
        "model": "cm",
        "split_type": "random",
        "repeat": 0,
        "fold": 1,
        "input": "true",
        "null_index": -1,
        "seed": 0,
        "settings": "{}",
    }
    key.update(changes)
    return key


def _rows(values):
    return [{"metric": "pearson", "stratum": f"s{k}", "value": v, "n_edges": 10 + k} for k, v in enumerate(values)]


def test_write_then_load_round_trips_exact_values(tmp_path):
    store = ResultsStore(tmp_path)
    values = [0.1 + 1e-13, np.nextafter(0.5, 1.0), -0.25]
    store.write_run(
        _key(),
        _rows(values),
        hyperparameters={"alpha": 0.01},
        n_parameters=7,
        fit_seconds=1.5,
        predictions={"i": np.array([0, 1]), "j": np.array([2, 3]), "y_pred": np.array([0.3, 0.4])},
    )
    df = store.load()
    assert sorted(df["value"]) == sorted(values)
    assert df.set_index("stratum").loc["s1", "value"] == np.nextafter(0.5, 1.0)  # bit-exact
    assert (df["n_parameters"] == 7).all() and (df["fit_seconds"] == 1.5).all()
    assert json.loads(df["hyperparameters"].iloc[0]) == {"alpha": 0.01}
    rid = run_id(_key())
    assert store.done_ids() == {rid}
    np.testing.assert_array_equal(store.load_predictions(rid)["y_pred"], [0.3, 0.4])
    # nothing temporary left behind
    assert [p.name for p in store.parts_dir.iterdir()] == [f"{rid}.parquet"]


def test_load_order_does_not_depend_on_write_order(tmp_path):
    keys = [_key(fold=f, model=m) for f in range(3) for m in ("cm", "exp-decay")]
    a, b = ResultsStore(tmp_path / "a"), ResultsStore(tmp_path / "b")
    for k, key in enumerate(keys):
        a.write_run(key, _rows([k, k + 0.5]), hyperparameters={}, n_parameters=1, fit_seconds=0.0)
    for k, key in reversed(list(enumerate(keys))):
        b.write_run(key, _rows([k, k + 0.5]), hyperparameters={}, n_parameters=1, fit_seconds=0.0)
    pd.testing.assert_frame_equal(a.load(), b.load(), check_exact=True)
    assert len(a.load()) == 12


def test_run_id_is_stable_and_sensitive_to_every_key_field():
    base = run_id(_key())
    assert base == run_id(dict(reversed(list(_key().items()))))  # order of fields irrelevant
    changed = {
        "dataset": "e",
        "model": "mlp",
        "split_type": "spatial",
        "repeat": 1,
        "fold": 0,
        "input": "null",
        "null_index": 3,
        "seed": 1,
        "settings": '{"a":1}',
    }
    assert set(changed) == set(KEY_COLUMNS)
    ids = {run_id(_key(**{f: v})) for f, v in changed.items()}
    assert len(ids) == len(changed) and base not in ids


def test_bad_rows_and_keys_raise_clear_errors(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(ValueError, match="lacks fields"):
        run_id({"dataset": "d"})
    with pytest.raises(ValueError, match="no metric rows"):
        store.write_run(_key(), [], hyperparameters={}, n_parameters=0, fit_seconds=0)
    with pytest.raises(ValueError, match="'n_edges'"):
        store.write_run(
            _key(),
            [{"metric": "pearson", "stratum": "all", "value": 1.0}],
            hyperparameters={},
            n_parameters=0,
            fit_seconds=0,
        )
    assert store.done_ids() == set()


def test_manifest_keeps_first_config_and_records_changes(tmp_path):
    store = ResultsStore(tmp_path)
    arr = np.arange(100.0)
    first = store.write_manifest({"repeats": 1}, datasets={"d": {"Y": arr}}, seeds={"root": 0})
    assert first["config"] == {"repeats": 1} and "history" not in first
    assert first["datasets"]["d"]["Y"]["shape"] == [100]  # arrays recorded by digest
    assert first["versions"]["numpy"] == np.__version__
    store.write_manifest({"repeats": 1})
    assert "history" not in store.read_manifest()
    store.write_manifest({"repeats": 10})
    m = store.read_manifest()
    assert m["config"] == {"repeats": 1} and m["history"][0]["config"] == {"repeats": 10}
    assert to_jsonable({"a": np.float32(0.5)}) == {"a": 0.5}
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json"):
        store.read_manifest()


def test_region_tables_are_keyed_by_dataset_and_content(tmp_path):
    from spatiomol.data.synthetic import make_synthetic_brain

    store = ResultsStore(tmp_path)
    regions = make_synthetic_brain(12, 5, seed=0).regions
    a = store.write_regions("data/a.yaml", regions)
    b = store.write_regions("other/a.yaml", regions)  # same table, same file name, another dataset
    moved = regions.assign(x=regions["x"] + 1.0)
    a2 = store.write_regions("data/a.yaml", moved)  # the dataset's files changed: a new table
    assert len({a, b, a2}) == 3 and all(p.startswith("regions/") for p in (a, b, a2))
    assert store.write_regions("data/a.yaml", regions) == a  # written once per content
    with pytest.raises(FileNotFoundError, match="'datasets.data/a.yaml.regions_file' is absent"):
        store.load_regions("data/a.yaml")
    store.write_manifest({}, datasets={"data/a.yaml": {"regions_file": a2}})
    table = store.load_regions("data/a.yaml")
    assert list(table.columns) == ["region", "label", "hemisphere", "structure", "network", "x", "y", "z"]
    np.testing.assert_array_equal(table["x"], moved["x"])  # exact floats
    assert list(table["label"]) == list(regions["label"]) and list(table["region"]) == list(range(12))
    store.recorded_path(a2).unlink()
    with pytest.raises(FileNotFoundError, match="region table of dataset 'data/a.yaml'"):
        store.load_regions("data/a.yaml")


def test_checked_runs_keeps_one_row_per_checked_run_and_flags_the_stuck_ones():
    rows = pd.DataFrame(
        {
            "run_id": ["a", "a", "b", "c", "c", "d"],
            "model": ["mlp", "mlp", "cm", "smt", "smt", "smt"],
            "training_check": [
                CHECK_TRAINED,
                CHECK_TRAINED,
                CHECK_NONE,
                f"{CHECK_NOT_TRAINED}: loss never fell",
                f"{CHECK_NOT_TRAINED}: loss never fell",
                CHECK_TRAINED,
            ],
            "metric": ["r", "mse", "r", "r", "mse", "r"],
        }
    )
    runs = checked_runs(rows)
    assert runs["run_id"].tolist() == ["a", "c", "d"]  # one row per run, the closed-form run left out
    assert runs["not_trained"].tolist() == [False, True, False]
    assert checked_runs(rows.drop(columns="training_check")).empty
