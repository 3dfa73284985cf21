"""Runner: numbers checked against an independent re-computation, a planted signal,
and identical results sequentially and with joblib processes (Dask: test_dask.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation import make_splits
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import TIMING_COLUMNS, ResultsStore
from spatiomol.models import registry

TIMING = list(TIMING_COLUMNS)  # cost is the only field allowed to differ between runs


@pytest.fixture(scope="module")
def config(make_grid_config):
    return ExperimentConfig.from_dict(make_grid_config(repeats=1))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, config):
    out = tmp_path_factory.mktemp("sequential")
    summary = run_experiment(config, out, jobs=1, progress=False)
    assert not summary.failed and summary.done == len(build_grid(config))
    return ResultsStore(out).load()


def _value(df, model, split_type, inp, fold, metric="pearson", stratum="all", null_index=-1):
    sel = df[
        (df["model"] == model)
        & (df["split_type"] == split_type)
        & (df["input"] == inp)
        & (df["repeat"] == 0)
        & (df["fold"] == fold)
        & (df["null_index"] == null_index)
        & (df["metric"] == metric)
        & (df["stratum"] == stratum)
    ]
    assert len(sel) == 1
    return float(sel["value"].iloc[0])


def test_rows_match_an_independent_fit(sequential, config):
    """Every true and permuted ``cm`` cell equals a direct fit on the same split (closed form)."""
    brain = make_synthetic_brain(40, 30, rule="bilinear", decay_weight=0.3, seed=3)
    specs = [s for s in build_grid(config) if s.model == "cm" and s.input in ("true", "permuted")]
    assert len(specs) == 2 * 4 * 2
    for spec in specs:
        split = make_splits(brain, spec.split_type, n_repeats=1, n_folds=4, seed=7)[spec.fold]
        seen = brain
        if spec.input == "permuted":
            perm = np.random.default_rng(spec.derived_seed("permutation")).permutation(40)
            seen = brain.replace(X=brain.X[perm])
        model = registry.make_model("cm").fit(seen, split.train)
        a, b = np.triu_indices(len(split.test), 1)
        i, j = split.test[a], split.test[b]
        y, y_hat = brain.Y[i, j], model.predict(seen, i, j)
        cell = (sequential, "cm", spec.split_type, spec.input, spec.fold)
        assert _value(*cell) == pytest.approx(stats.pearsonr(y, y_hat)[0], abs=1e-12)
        assert _value(*cell, "mse") == pytest.approx(np.mean((y - y_hat) ** 2), rel=1e-12)
        n_edges = sequential.loc[sequential["run_id"] == spec.run_id, "n_edges"].iloc[0]
        assert n_edges == len(split.test) * (len(split.test) - 1) // 2


def test_null_runs_use_the_cached_cge_nulls_in_turn(sequential, config, tmp_path_factory):
    from spatiomol.nulls import generate_nulls

    brain = make_synthetic_brain(40, 30, rule="bilinear", decay_weight=0.3, seed=3)
    reference = generate_nulls(brain, n=200, top=2, seed=0, method="cge")
    null_runs = sequential[(sequential["input"] == "null")][
        ["run_id", "repeat", "fold", "null_index"]
    ].drop_duplicates()
    # shared folds: 1 true repeat, top 2 -> both nulls on each of the true runs' 4 folds (2 split types)
    assert sorted(zip(null_runs["repeat"], null_runs["fold"], null_runs["null_index"])) == sorted(
        [(0, f, k) for f in range(4) for k in range(2)] * 2
    )
    split = make_splits(brain, "random", n_repeats=1, n_folds=4, seed=7)[3]
    a, b = np.triu_indices(len(split.test), 1)
    i, j = split.test[a], split.test[b]
    for k in range(2):
        model = registry.make_model("cm").fit(reference.apply(brain, k), split.train)
        expected = stats.pearsonr(brain.Y[i, j], model.predict(reference.apply(brain, k), i, j))[0]
        assert _value(sequential, "cm", "random", "null", 3, null_index=k) == pytest.approx(expected, abs=1e-12)


def test_planted_rule_beats_permuted_expression(sequential):
    true_r = [_value(sequential, "cm", "random", "true", f) for f in range(4)]
    perm_r = [_value(sequential, "cm", "random", "permuted", f) for f in range(4)]
    assert min(true_r) > 0.6
    assert np.mean(true_r) - np.mean(perm_r) > 0.4
    assert set(sequential.loc[sequential["model"] == "exp-decay", "input"]) == {"true"}
    n_params = sequential.groupby("model")["n_parameters"].first()
    assert n_params["exp-decay"] == 2 and n_params["cm"] > 100


def test_joblib_processes_give_identical_rows(sequential, config, tmp_path):
    summary = run_experiment(config, tmp_path, jobs=2, progress=False)
    assert summary.done == len(build_grid(config)) and not summary.failed
    pd.testing.assert_frame_equal(
        ResultsStore(tmp_path).load().drop(columns=TIMING), sequential.drop(columns=TIMING), check_exact=True
    )


def test_failures_are_recorded_and_the_grid_goes_on(tmp_path, make_grid_config):
    bad = ExperimentConfig.from_dict(
        make_grid_config(repeats=1, splits=["random"], models=["cm"], model_params={"cm": {"alpha": -5.0}})
    )
    summary = run_experiment(bad, tmp_path, progress=False)
    specs = build_grid(bad)
    assert len(summary.failed) == len(specs) and summary.done == 0
    store = ResultsStore(tmp_path)
    for spec in specs:
        text = store.failure_path(spec.run_id).read_text()
        assert text.startswith(spec.label()) and "Traceback" in text and "alpha" in text
    assert store.done_ids() == set() and not any(store.claims_dir.glob("*.claim"))


def test_grid_slices_run_one_after_another_add_up_to_the_whole_grid(sequential, config, tmp_path):
    """Slices share the whole grid's run ids and seeds: two halves give the whole grid's rows
    exactly, and the manifest records the whole grid after each half."""
    whole = build_grid(config)
    first = run_experiment(config, tmp_path, progress=False, only={"split_type": ["random"]}, log=lambda _: None)
    assert first.planned == sum(s.split_type == "random" for s in whole) < len(whole)
    manifest = ResultsStore(tmp_path).read_manifest()
    assert manifest["planned_runs"] == len(whole) and manifest["run_ids"] == sorted(s.run_id for s in whole)
    assert set(ResultsStore(tmp_path).load()["split_type"]) == {"random"}
    run_experiment(config, tmp_path, progress=False, only={"split_type": "spatial"}, log=lambda _: None)
    got = ResultsStore(tmp_path).load().drop(columns=TIMING)
    key = ["run_id", "metric", "stratum"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        sequential.drop(columns=TIMING).sort_values(key).reset_index(drop=True),
        check_exact=True,
    )


def test_grid_slice_errors_name_the_field_and_the_grids_values(config, tmp_path):
    from spatiomol.experiments.grid import select_runs

    grid = build_grid(config)
    assert select_runs(grid, {"fold": ["1", 3], "model": "cm"}) == [
        s for s in grid if s.fold in (1, 3) and s.model == "cm"
    ]
    with pytest.raises(ValueError, match=r"unknown field 'folds'.*repeat, fold"):
        select_runs(grid, {"folds": [1]})
    with pytest.raises(ValueError, match=r"fold=7 is not in the grid \(its fold values: 0, 1, 2, 3\)"):
        select_runs(grid, {"fold": [7, 1]})
    with pytest.raises(ValueError, match=r"'repeat' expects int values, got \['one'\]"):
        select_runs(grid, {"repeat": ["one"]})
    with pytest.raises(ValueError, match="model=mlp is not in the grid"):
        run_experiment(config, tmp_path, progress=False, only={"model": ["mlp"]})
    assert not (tmp_path / "manifest.json").exists()


def test_each_run_records_its_cpu_time(sequential):
    """CPU seconds (time.process_time over selection + fit) sit beside the wall seconds, so a
    study can state CPU-hours; a fit cannot use less than zero or, single-threaded in this
    process, much more CPU than wall time."""
    runs = sequential.drop_duplicates("run_id")
    assert np.isfinite(runs["fit_cpu_seconds"]).all() and (runs["fit_cpu_seconds"] >= 0).all()
    assert (runs["fit_cpu_seconds"] <= 4 * runs["fit_seconds"] + 0.5).all()
