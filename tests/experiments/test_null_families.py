"""Several null families side by side in one experiment: settings, run keys, rows, caches, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spatiomol.cli.main import main
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation import evaluate, make_splits
from spatiomol.experiments import execute, runner
from spatiomol.experiments.config import ExperimentConfig, null_family_label, resolved_nulls
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import TIMING_COLUMNS, ResultsStore
from spatiomol.models import registry
from spatiomol.nulls import CGE_MATCH_DEFAULT, NULL_DEFAULTS, NullSet, generate_nulls

CGE = {"method": "cge", "n": 200, "top": 2}
MORAN = {"method": "moran", "n": 200, "top": 2}
TIMING = list(TIMING_COLUMNS)  # cost is the only field allowed to differ between runs


def _config(make_grid_config, nulls, **changes):
    settings = {"models": ["exp-decay", "cm"], "splits": ["random"], "inputs": ["true", "null"], "nulls": nulls}
    return ExperimentConfig.from_dict(make_grid_config(**{**settings, **changes}))


def test_labels_are_the_method_plus_the_settings_that_differ_from_the_defaults():
    assert null_family_label({"method": "cge"}) == "cge"
    assert null_family_label(NULL_DEFAULTS) == NULL_DEFAULTS["method"]
    # cge_match None and the method's own default are the same family
    assert null_family_label({"method": "hungarian", "cge_match": CGE_MATCH_DEFAULT["hungarian"]}) == "hungarian"
    label = null_family_label({"method": "hungarian", "cge_match": True, "subcortex": "shuffle", "min_moved": 0})
    assert label == "hungarian(min_moved=0.0,subcortex=shuffle,cge_match=true)"
    assert resolved_nulls({"method": "moran"})["cge_match"] is CGE_MATCH_DEFAULT["moran"]


def test_every_setting_that_shapes_the_nulls_enters_the_run_key(make_grid_config):
    def null_ids(nulls):
        return {s.run_id for s in build_grid(_config(make_grid_config, nulls)) if s.input == "null"}

    base = null_ids(CGE)
    assert len(base) == 16  # 2 nulls × 2 repeats × 4 folds
    assert null_ids({**CGE, "subcortex": "shuffle"}).isdisjoint(base)
    assert null_ids({**CGE, "cge_match": False}).isdisjoint(base)
    # cge_match None is resolved to the method's default, so spelling it out changes nothing
    assert null_ids({**CGE, "cge_match": CGE_MATCH_DEFAULT["cge"]}) == base
    settings = json.loads(next(s for s in build_grid(_config(make_grid_config, CGE)) if s.input == "null").settings)
    # neural_top shapes the grid, not the nulls: it is not in the run key (GRID_NULL_KEYS)
    expected = {k: v for k, v in NULL_DEFAULTS.items() if k != "neural_top"}
    assert settings["nulls"] == {**expected, **CGE, "cge_match": CGE_MATCH_DEFAULT["cge"]}
    assert null_ids({**CGE, "neural_top": 1}) == base  # cm is closed-form: all top nulls either way


def test_families_side_by_side_in_the_grid(make_grid_config):
    single = build_grid(_config(make_grid_config, CGE))
    as_list = build_grid(_config(make_grid_config, [CGE]))
    both = build_grid(_config(make_grid_config, [CGE, MORAN]))
    # a one-family config has the same runs whether written as a mapping or a list
    assert [s.run_id for s in single] == [s.run_id for s in as_list]
    # a second family adds its own null runs and changes none of the others
    assert {s.run_id for s in single} < {s.run_id for s in both}
    added = [s for s in both if s.run_id not in {t.run_id for t in single}]
    assert len(added) == 16 and {(s.model, s.input, s.null_family) for s in added} == {
        ("cm", "null", "moran(n=200,top=2)")
    }
    assert {s.null_family for s in both} == {"", "cge(n=200,top=2)", "moran(n=200,top=2)"}
    assert sorted({(s.null_family, s.repeat, s.null_index) for s in added}) == [
        ("moran(n=200,top=2)", r, k) for r in (0, 1) for k in (0, 1)
    ]
    assert all(s.null_family == "" for s in both if s.input != "null")
    assert "/null[moran(n=200,top=2)]#1" in added[-1].label()


def test_unknown_family_fails_before_any_run(make_grid_config, tmp_path, capsys):
    config = _config(make_grid_config, CGE)
    config.nulls = [CGE, {"method": "spins"}]  # edited after loading: run_experiment checks again
    with pytest.raises(ValueError, match=r"'nulls\[1\].method' must be one of .*got 'spins'"):
        run_experiment(config, tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()
    args = ["run", "--dataset", "synthetic:n_regions=20,n_genes=10,seed=1", "--models", "cm", "--no-progress"]
    assert main([*args, "--null-method", "cge,spins", "--out", str(tmp_path / "cli")]) == 2
    assert "'nulls[1].method' must be one of" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_cli_null_method_makes_one_family_per_method(config_file):
    from spatiomol.cli.main import build_parser
    from spatiomol.cli.run_commands import _config_from_args

    path = config_file(nulls={"n": 300, "top": 5, "method": "cge", "subcortex": "shuffle"})
    args = build_parser().parse_args(["run", str(path), "--null-method", "cge,moran", "--null-spins", "250"])
    families = _config_from_args(args).null_families()
    assert list(families) == ["cge(n=250,top=5,subcortex=shuffle)", "moran(n=250,top=5,subcortex=shuffle)"]
    assert families["moran(n=250,top=5,subcortex=shuffle)"]["cge_match"] is CGE_MATCH_DEFAULT["moran"]
    one = _config_from_args(build_parser().parse_args(["run", str(path), "--null-method", "moran"]))
    assert isinstance(one.nulls, dict) and one.nulls["method"] == "moran" and one.nulls["n"] == 300


@pytest.fixture(scope="module")
def two_families(tmp_path_factory, make_grid_config):
    """One family run first, then a second family added to the same results folder."""
    out = tmp_path_factory.mktemp("families")
    first = run_experiment(_config(make_grid_config, CGE), out, progress=False, log=lambda m: None)
    assert first.done == 32 and not first.failed  # 8 exp-decay + 8 cm true, 2 nulls × 8 splits of cm
    config = _config(make_grid_config, [CGE, MORAN])
    second = run_experiment(config, out, progress=False, log=lambda m: None)
    assert (second.already_done, second.done, second.failed) == (32, 16, [])
    return out, config


def test_each_family_has_its_labelled_null_runs_and_its_own_nulls_file(two_families):
    out, config = two_families
    store = ResultsStore(out)
    df = store.load()
    runs = df[["run_id", "model", "input", "null_family", "null_index"]].drop_duplicates()
    counts = runs.groupby(["model", "input", "null_family"]).size().to_dict()
    assert counts == {
        ("cm", "null", "cge(n=200,top=2)"): 16,
        ("cm", "null", "moran(n=200,top=2)"): 16,
        ("cm", "true", ""): 8,
        ("exp-decay", "true", ""): 8,
    }
    manifest = store.read_manifest()
    assert manifest["null_families"] == json.loads(json.dumps(config.null_families()))
    files = manifest["datasets"][config.datasets[0]]["nulls_files"]
    assert list(files) == ["cge(n=200,top=2)", "moran(n=200,top=2)"]
    assert manifest["datasets"][config.datasets[0]]["nulls_file"] == files["cge(n=200,top=2)"]
    assert sorted(p.name for p in store.nulls_dir.iterdir()) == sorted(f.split("/")[-1] for f in files.values())
    for label, relative in files.items():
        assert relative.endswith(f"-{label.split('(')[0]}.npz")
        assert NullSet.load(out / relative).metadata["method"] == label.split("(")[0]


def test_stored_null_rows_equal_a_direct_fit_on_each_familys_null_brain(two_families):
    out, config = two_families
    df = ResultsStore(out).load()
    brain = make_synthetic_brain(40, 30, rule="bilinear", decay_weight=0.3, seed=3)
    splits = make_splits(brain, "random", n_repeats=2, n_folds=4, seed=7)
    checked = 0
    for settings, method in ((CGE, "cge"), (MORAN, "moran")):
        nulls = generate_nulls(brain, n=200, top=10, seed=0, method=method)
        label = null_family_label(settings)
        for split in splits:
            on_split = df[
                (df["null_family"] == label)
                & (df["model"] == "cm")
                & (df["repeat"] == split.repeat)
                & (df["fold"] == split.fold)
            ]
            assert set(on_split["null_index"]) == {0, 1}  # shared folds: every kept null on every split
            for k in (0, 1):
                null_brain = nulls.apply(brain, k)
                model = registry.make_model("cm").fit(null_brain, split.train)
                i, j = split.test_pairs()
                expected = pd.DataFrame(evaluate(brain, i, j, model.predict(null_brain, i, j)))
                stored = on_split[on_split["null_index"] == k]
                merged = stored.merge(expected, on=["metric", "stratum"], suffixes=("", "_direct"))
                assert len(merged) == len(expected) == len(stored)
                np.testing.assert_allclose(
                    merged["value"], merged["value_direct"], rtol=1e-10, atol=1e-12, equal_nan=True
                )
                checked += 1
    assert checked == 32
    # the Moran nulls replace every expression row: not a permutation of the true rows
    assert not generate_nulls(brain, n=200, top=10, seed=0, method="moran").is_permutation


def test_resume_skips_every_family_and_refits_from_the_key(two_families, monkeypatch):
    out, config = two_families
    before = ResultsStore(out).load()

    def no_compute(spec, store):
        raise AssertionError(f"{spec.label()} recomputed")

    monkeypatch.setattr(execute, "compute_run", no_compute)
    again = run_experiment(config, out, progress=False, log=lambda m: None)
    assert (again.already_done, again.done) == (len(build_grid(config)), 0)
    pd.testing.assert_frame_equal(ResultsStore(out).load(), before)
    monkeypatch.undo()
    store = ResultsStore(out)
    rid = before.loc[before["null_family"] == "moran(n=200,top=2)", "run_id"].iloc[0]
    spec = runner.run_spec(out, rid)
    assert spec.null_family == "moran(n=200,top=2)"
    refit = runner.fit_run(spec, out)
    y_pred = refit.model.predict(refit.data.predict_brain, refit.data.i, refit.data.j)
    np.testing.assert_array_equal(y_pred, store.load_predictions(rid)["y_pred"])


def test_full_config_runs_the_calibrated_family_beside_the_papers_and_the_demo_the_default():
    from pathlib import Path

    from spatiomol.experiments.config import demo_config_path, load_config

    full = load_config(Path(__file__).resolve().parents[2] / "configs" / "full.yaml")
    assert list(full.null_families()) == ["anatomical", "moran", "cge(top=10)"]
    assert [s["top"] for s in full.null_families().values()] == [99, 99, 10]
    demo = load_config(demo_config_path())
    assert list(demo.null_families()) == [NULL_DEFAULTS["method"], "moran"] == ["anatomical", "moran"]
    null_models = {s.model for s in build_grid(demo) if s.input == "null"}
    assert null_models == {"cge-pca", "cm"}
