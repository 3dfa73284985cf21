"""Held-out-system splits (issue 27): network, hemisphere and structure folds, checked
against the regions table by hand, their fixed layouts, storage, and the grid that runs them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatiomol.data.datasets import load_dataset
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.splits import (
    HELD_OUT_KINDS,
    inner_validation,
    load_splits,
    make_splits,
    save_splits,
    split_layout,
)
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.inputs import split_layouts
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports.report import write_report

SYNTHETIC = "synthetic:n_regions=40,n_genes=12,seed=0"


@pytest.fixture(scope="module")
def hcp(data_mirror):
    return load_dataset("hcp-s100", mirror=data_mirror)


def test_network_folds_hold_out_one_label_each(hcp):
    splits = make_splits(hcp, "network", n_repeats=10, n_folds=4, seed=3)
    labels = list(dict.fromkeys(hcp.network))
    assert labels[-1] == "Subcortex" and len(labels) == 8  # 7 Schaefer networks, then the subcortex
    assert [s.held_out for s in splits] == labels
    assert [(s.repeat, s.fold) for s in splits] == [(0, f) for f in range(8)]
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(hcp.n_regions))  # every region tested once
    for split in splits:
        np.testing.assert_array_equal(split.test, np.flatnonzero(hcp.network == split.held_out))
        np.testing.assert_array_equal(split.train, np.flatnonzero(hcp.network != split.held_out))
        i, j = split.train_pairs()
        assert not np.isin(i, split.test).any() and not np.isin(j, split.test).any()  # no edge to a test region
    assert split_layout(hcp, "network", 10, 4) == (1, 8)


def test_hemisphere_and_structure_folds(hcp):
    left, right = np.flatnonzero(hcp.hemisphere == "L"), np.flatnonzero(hcp.hemisphere == "R")
    one, two = make_splits(hcp, "hemisphere")
    np.testing.assert_array_equal(one.train, left)
    np.testing.assert_array_equal(one.test, right)
    np.testing.assert_array_equal(two.train, right)
    np.testing.assert_array_equal(two.test, left)
    assert (one.held_out, two.held_out) == ("L→R", "R→L")
    (only,) = make_splits(hcp, "structure")
    np.testing.assert_array_equal(only.train, np.arange(100))
    np.testing.assert_array_equal(only.test, np.arange(100, 114))
    assert split_layout(hcp, "hemisphere", 10, 4) == (1, 2) and split_layout(hcp, "structure", 10, 4) == (1, 1)
    assert split_layout(hcp, "random", 10, 4) == (10, 4)


def test_regions_outside_both_sides_are_left_out(hcp):
    regions = hcp.regions.copy()
    regions.loc[[0, 57], "hemisphere"] = "B"  # midline regions
    regions.loc[[101, 102], "structure"] = "cerebellum"
    brain = hcp.replace(regions=regions)
    for split in make_splits(brain, "hemisphere"):
        assert not {0, 57} & (set(split.train.tolist()) | set(split.test.tolist()))
    (only,) = make_splits(brain, "structure")
    assert not {101, 102} & (set(only.train.tolist()) | set(only.test.tolist()))


def test_a_brain_without_networks_is_a_clear_error(data_mirror):
    dk = load_dataset("hcp-dk", mirror=data_mirror)
    with pytest.raises(ValueError, match=r"'hcp-dk': network splits need a network label per region .*'network'"):
        make_splits(dk, "network")
    assert len(make_splits(dk, "hemisphere")) == 2  # the other held-out protocols still work
    config = ExperimentConfig(name="x", datasets=["hcp-dk"], models=["cm"], splits=["network"], inputs=["true"])
    with pytest.raises(ValueError, match=r"config field 'splits': dataset 'hcp-dk' cannot be split by 'network'"):
        split_layouts(config)


def test_held_out_splits_round_trip_and_validate(tmp_path, hcp):
    splits = make_splits(hcp, "network") + make_splits(hcp, "hemisphere")
    path = save_splits(splits, tmp_path / "splits.json")
    assert load_splits(path, brain=hcp) == splits


def test_inner_validation_of_a_held_out_split_is_a_spatial_block(hcp):
    split = make_splits(hcp, "structure")[0]
    inner, val = inner_validation(hcp, split.train, "structure", fraction=0.2, seed=1)
    inner_s, val_s = inner_validation(hcp, split.train, "spatial", fraction=0.2, seed=1)
    np.testing.assert_array_equal(val, val_s)
    np.testing.assert_array_equal(inner, inner_s)


def test_the_grid_runs_each_layout_and_needs_it(tmp_path):
    config = ExperimentConfig(
        name="held-out",
        datasets=[SYNTHETIC],
        models=["cm", "cge-pca"],
        splits=["random", *HELD_OUT_KINDS],
        repeats=2,
        folds=4,
        inputs=["true"],
        tuning=False,
    )
    with pytest.raises(ValueError, match="layout fixed by the brain"):
        build_grid(config)
    brain = make_synthetic_brain(n_regions=40, n_genes=12, seed=0)
    n_labels = len(set(brain.network))
    grid = build_grid(config, split_layouts(config))
    counts = pd.Series([s.split_type for s in grid]).value_counts().to_dict()
    assert counts == {"random": 16, "network": 2 * n_labels, "hemisphere": 4, "structure": 2}
    assert not run_experiment(config, tmp_path, progress=False).failed
    df = ResultsStore(tmp_path).load()
    rows = df[(df["metric"] == "pearson") & (df["stratum"] == "all")]
    held = rows[rows["split_type"] == "structure"]
    assert len(held) == 2 and np.isfinite(held["value"]).all()
    assert rows.groupby("split_type")["fold"].nunique().to_dict() == {
        "random": 4,
        "network": n_labels,
        "hemisphere": 2,
        "structure": 1,
    }

    # the report's transfer-to-held-out-systems bars: each fold's stored score under its system's name
    write_report(tmp_path, tmp_path / "report", n_permutations=50, html=False, brain_views=False)
    bars = pd.read_csv(tmp_path / "report" / "tables" / "held_out_synthetic_n_regions_40_n_genes_12_seed_0_network.csv")
    assert list(dict.fromkeys(bars["held_out"])) == list(dict.fromkeys(brain.network))
    assert set(bars["model"]) == {"cm", "cge-pca"}
    for _, bar in bars.iterrows():
        stored = rows[
            (rows["split_type"] == "network") & (rows["fold"] == bar["fold"]) & (rows["model"] == bar["model"])
        ]
        np.testing.assert_allclose(bar["pearson"], stored["value"].to_numpy()[0], equal_nan=True)
        test = make_splits(brain, "network")[int(bar["fold"])]
        assert test.held_out == bar["held_out"]


def test_unlabelled_regions_are_never_held_out_and_single_region_labels_are_refused(hcp):
    regions = hcp.regions.copy()
    regions.loc[[0, 1, 2], "network"] = "Unknown"
    brain = hcp.replace(regions=regions)
    splits = make_splits(brain, "network")
    assert "Unknown" not in [s.held_out for s in splits]
    assert all({0, 1, 2} <= set(s.train.tolist()) for s in splits)
    regions.loc[[5], "network"] = "Lonely"
    with pytest.raises(ValueError, match=r"'network': labels \['Lonely'\] have a single region"):
        make_splits(hcp.replace(regions=regions), "network")


def test_a_held_out_figure_missing_its_reference_model_says_so(tmp_path):
    config = ExperimentConfig(
        name="held-out-linear-only",
        datasets=[SYNTHETIC],
        models=["cm"],
        splits=["hemisphere"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
    )
    assert not run_experiment(config, tmp_path, progress=False).failed
    path = write_report(tmp_path, tmp_path / "report", n_permutations=50, html=False, brain_views=False)
    bars = pd.read_csv(next((tmp_path / "report" / "tables").glob("held_out_*_hemisphere.csv")))
    assert set(bars["model"]) == {"cm"} and len(bars) == 2  # L→R and R→L
    assert "No non-linear model has hemisphere-split runs" in path.read_text()
