"""Splits: no leakage, full coverage, disjointness, determinism, spatial compactness, storage."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatiomol.data.brain import Brain
from spatiomol.evaluation.splits import (
    Split,
    inner_validation,
    load_splits,
    make_splits,
    save_splits,
)


def brain_from_coords(coords: np.ndarray, name: str = "toy") -> Brain:
    n = len(coords)
    regions = pd.DataFrame(
        {
            "label": [f"r{k}" for k in range(n)],
            "hemisphere": np.where(coords[:, 0] < 0, "L", "R"),
            "structure": "cortex",
            "network": "Vis",
            "x": coords[:, 0],
            "y": coords[:, 1],
            "z": coords[:, 2],
        }
    )
    return Brain(name=name, regions=regions, X=np.zeros((n, 1)), genes=("G",), Y=np.eye(n))


def random_coords(n: int, seed: int, grid_mm: float | None) -> np.ndarray:
    coords = np.random.default_rng(seed).uniform(-70, 70, size=(n, 3))
    if grid_mm:  # coarse grid: many equal distances, exercising tie-breaking
        coords = np.round(coords / grid_mm) * grid_mm
    return coords


def pair_set(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(i.tolist(), j.tolist()))


split_cases = st.fixed_dictionaries(
    {
        "n_regions": st.integers(8, 90),
        "n_folds": st.integers(2, 5),
        "seed": st.integers(0, 2**32 - 1),
        "coord_seed": st.integers(0, 10_000),
        "grid_mm": st.sampled_from([None, 25.0, 60.0]),
        "kind": st.sampled_from(["random", "spatial"]),
    }
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=split_cases)
def test_splits_partition_regions_and_never_leak(case):
    n, n_folds = case["n_regions"], case["n_folds"]
    if n < 2 * n_folds:
        with pytest.raises(ValueError, match="too few"):
            make_splits(brain_from_coords(random_coords(n, 0, None)), case["kind"], 2, n_folds)
        return
    brain = brain_from_coords(random_coords(n, case["coord_seed"], case["grid_mm"]))
    splits = make_splits(brain, case["kind"], n_repeats=2, n_folds=n_folds, seed=case["seed"])
    assert len(splits) == 2 * n_folds
    expected_sizes = [len(b) for b in np.array_split(np.arange(n), n_folds)]
    everything = np.arange(n)
    for repeat in range(2):
        folds = [s for s in splits if s.repeat == repeat]
        assert [s.fold for s in folds] == list(range(n_folds))
        # full coverage and disjointness: every region tested exactly once per repeat
        counts = np.bincount(np.concatenate([s.test for s in folds]), minlength=n)
        assert np.array_equal(counts, np.ones(n, dtype=int))
        assert [s.test.size for s in folds] == expected_sizes
        for s in folds:
            assert np.array_equal(np.union1d(s.train, s.test), everything)
            assert np.intersect1d(s.train, s.test).size == 0
            train_edges = pair_set(*s.train_pairs())
            test_edges = pair_set(*s.test_pairs())
            assert len(train_edges) == comb(s.train.size, 2)
            assert len(test_edges) == comb(s.test.size, 2)
            assert not train_edges & test_edges
            test_set = set(s.test.tolist())
            # no leakage: no training edge touches a test region
            assert all(a not in test_set and b not in test_set for a, b in train_edges)
            assert all(a in test_set and b in test_set for a, b in test_edges)
            assert all(a < b for a, b in train_edges | test_edges)
    # determinism: the same seed gives the same splits
    again = make_splits(brain, case["kind"], n_repeats=2, n_folds=n_folds, seed=case["seed"])
    assert again == splits
    # repeat k does not depend on how many repeats are drawn
    assert make_splits(brain, case["kind"], n_repeats=1, n_folds=n_folds, seed=case["seed"]) == splits[:n_folds]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=split_cases.filter(lambda c: c["n_regions"] >= 2 * c["n_folds"]))
def test_spatial_test_set_is_nearest_unassigned_neighbourhood(case):
    brain = brain_from_coords(random_coords(case["n_regions"], case["coord_seed"], case["grid_mm"]))
    splits = make_splits(brain, "spatial", n_repeats=1, n_folds=case["n_folds"], seed=case["seed"])
    unassigned = set(range(brain.n_regions))
    for s in splits:
        assert s.source in set(s.test.tolist())
        assert s.source in unassigned  # drawn among regions not yet used as test
        d = brain.distances[s.source]
        rest = np.array(sorted(unassigned - set(s.test.tolist())), dtype=int)
        if rest.size:
            # every test region is at least as close to the source as every region left out
            assert d[s.test].max() <= d[rest].min()
        unassigned -= set(s.test.tolist())
    assert not unassigned


def test_random_split_matches_documented_seeding():
    brain = brain_from_coords(random_coords(23, 1, None))
    seed, n_repeats = 1234, 3
    splits = make_splits(brain, "random", n_repeats=n_repeats, n_folds=4, seed=seed)
    children = np.random.SeedSequence(seed).spawn(n_repeats)
    for repeat, child in enumerate(children):
        order = np.random.default_rng(child).permutation(23)
        for fold, block in enumerate(np.array_split(order, 4)):
            split = splits[repeat * 4 + fold]
            assert (split.repeat, split.fold, split.seed) == (repeat, fold, seed)
            assert np.array_equal(split.test, np.sort(block))


def test_spatial_split_takes_whole_clusters():
    # two tight clusters of 4 regions 100 mm apart: each of 2 folds must be one cluster
    rng = np.random.default_rng(0)
    left = np.array([-60.0, 0, 0]) + rng.normal(0, 2, size=(4, 3))
    right = np.array([40.0, 0, 0]) + rng.normal(0, 2, size=(4, 3))
    brain = brain_from_coords(np.vstack([left, right]))
    for seed in range(5):
        splits = make_splits(brain, "spatial", n_repeats=3, n_folds=2, seed=seed)
        for s in splits:
            assert s.test.tolist() in ([0, 1, 2, 3], [4, 5, 6, 7])


def test_spatial_splits_on_real_atlas_are_compact(data_mirror):
    atlas = pd.read_csv(data_mirror / "atlas" / "atlas-4S156Parcels_dseg_reformatted.csv")
    coords = atlas[["mni_x", "mni_y", "mni_z"]].to_numpy(float)
    brain = brain_from_coords(coords, name="4S156")
    spatial = make_splits(brain, "spatial", n_repeats=10, n_folds=4, seed=0)
    random = make_splits(brain, "random", n_repeats=10, n_folds=4, seed=0)

    def mean_test_distance(s: Split) -> float:
        i, j = s.test_pairs()
        return float(brain.distances[i, j].mean())

    # the first fold of each repeat is the exact 25 % neighbourhood of its source
    first = [s for s in spatial if s.fold == 0]
    for s in first:
        assert s.test.size == 39
        assert np.array_equal(s.test, np.sort(np.argsort(brain.distances[s.source], kind="stable")[:39]))
    assert np.mean([mean_test_distance(s) for s in first]) < 0.6 * np.mean([mean_test_distance(s) for s in random])


def test_different_seeds_give_different_splits():
    brain = brain_from_coords(random_coords(40, 2, None))
    for kind in ("random", "spatial"):
        a = make_splits(brain, kind, n_repeats=3, seed=0)
        b = make_splits(brain, kind, n_repeats=3, seed=1)
        assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, b))
        # repeats differ from each other within one seed
        assert not np.array_equal(a[0].test, a[4].test) or not np.array_equal(a[1].test, a[5].test)


def test_dataset_name_is_only_a_label():
    coords = random_coords(30, 3, None)
    a = make_splits(brain_from_coords(coords, "one"), "spatial", n_repeats=2)
    b = make_splits(brain_from_coords(coords, "two"), "spatial", n_repeats=2)
    assert all(np.array_equal(x.test, y.test) and x.dataset == "one" and y.dataset == "two" for x, y in zip(a, b))
    assert a[0].key == "one:spatial:seed0:r00:f0"
    assert len({s.key for s in a}) == len(a)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_save_load_roundtrip(tmp_path, suffix):
    brain = brain_from_coords(random_coords(26, 4, None), name="toy")
    splits = make_splits(brain, "spatial", n_repeats=3) + make_splits(brain, "random", n_repeats=2)
    path = save_splits(splits, tmp_path / f"splits{suffix}")
    assert path == tmp_path / f"splits{suffix}" and path.exists()
    loaded = load_splits(path, brain=brain)
    assert loaded == splits
    assert [s.source for s in loaded] == [s.source for s in splits]
    assert all(s.train.dtype == np.int64 and not s.train.flags.writeable for s in loaded)

    other = brain_from_coords(random_coords(30, 4, None), name="toy")
    with pytest.raises(ValueError, match="does not partition the 30 regions"):
        load_splits(path, brain=other)


def test_load_rejects_malformed_files(tmp_path):
    bad_format = tmp_path / "a.json"
    bad_format.write_text(json.dumps({"format": "other", "version": 1, "splits": []}))
    with pytest.raises(ValueError, match="a.json: field 'format'"):
        load_splits(bad_format)
    missing = tmp_path / "b.json"
    missing.write_text(
        json.dumps({"format": "spatiomol-splits", "version": 1, "splits": [{"dataset": "x", "kind": "random"}]})
    )
    with pytest.raises(ValueError, match=r"b.json: splits\[0\] lacks fields"):
        load_splits(missing)
    overlap = tmp_path / "c.json"
    record = {"dataset": "x", "kind": "random", "repeat": 0, "fold": 0, "seed": 0, "train": [0, 1, 2], "test": [2, 3]}
    overlap.write_text(json.dumps({"format": "spatiomol-splits", "version": 1, "splits": [record]}))
    with pytest.raises(ValueError, match="disjoint"):
        load_splits(overlap)
    not_json = tmp_path / "d.json"
    not_json.write_text("{")
    with pytest.raises(ValueError, match="d.json: not a JSON or npz splits file"):
        load_splits(not_json)
    no_meta = tmp_path / "e.npz"
    np.savez(no_meta, train_0=np.arange(3))
    with pytest.raises(ValueError, match="e.npz: npz splits file lacks the array 'meta'"):
        load_splits(no_meta)
    brain = brain_from_coords(random_coords(12, 0, None))
    truncated = save_splits(make_splits(brain, "random", n_repeats=1), tmp_path / "f.npz")
    with np.load(truncated) as archive:
        kept = {k: archive[k] for k in archive.files if k != "test_3"}
    np.savez(truncated, **kept)
    with pytest.raises(ValueError, match="f.npz: npz splits file lacks the array 'test_3'"):
        load_splits(truncated)


def test_seeds_must_be_non_negative_integers():
    brain = brain_from_coords(random_coords(20, 0, None))
    for bad in (1.5, 2.0, None, "3", -1):
        with pytest.raises(ValueError, match=r"make_splits: 'seed' must be a non-negative integer, got"):
            make_splits(brain, "random", n_repeats=1, seed=bad)
        with pytest.raises(ValueError, match=r"inner_validation: 'seed' must be a non-negative integer, got"):
            inner_validation(brain, np.arange(12), "random", seed=bad)
    # integer types (numpy included) are accepted and mean the same seed
    a = make_splits(brain, "random", n_repeats=1, seed=np.int64(7))
    b = make_splits(brain, "random", n_repeats=1, seed=7)
    assert all(x == y for x, y in zip(a, b)) and a[0].seed == 7
    expected = np.sort(np.random.default_rng(7).choice(np.arange(12), size=2, replace=False))
    assert np.array_equal(inner_validation(brain, np.arange(12), "random", seed=np.int32(7))[1], expected)


def test_load_splits_names_a_missing_file(tmp_path):
    missing = tmp_path / "nowhere" / "splits.json"
    with pytest.raises(ValueError, match=f"splits file {missing}: does not exist"):
        load_splits(missing)


def test_split_validation_and_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        Split("x", "checkerboard", 0, 0, 0, np.array([0, 1]), np.array([2, 3]))
    with pytest.raises(ValueError, match="sorted and unique"):
        Split("x", "random", 0, 0, 0, np.array([1, 0]), np.array([2, 3]))
    brain = brain_from_coords(random_coords(12, 0, None))
    with pytest.raises(ValueError, match="kind must be one of"):
        make_splits(brain, "blocks")
    with pytest.raises(ValueError, match="n_folds"):
        make_splits(brain, "random", n_folds=1)
    coords = random_coords(12, 0, None)
    coords[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite MNI coordinates"):
        make_splits(brain_from_coords(coords), "spatial")


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    n_train=st.integers(6, 80),
    fraction=st.sampled_from([0.1, 0.2, 0.3, 0.5]),
    seed=st.integers(0, 2**31),
    kind=st.sampled_from(["random", "spatial"]),
)
def test_inner_validation_partitions_training_regions(n_train, fraction, seed, kind):
    brain = brain_from_coords(random_coords(n_train + 10, seed % 997, 20.0))
    train = np.sort(np.random.default_rng(seed).choice(brain.n_regions, n_train, replace=False))
    inner, val = inner_validation(brain, train, kind, fraction=fraction, seed=seed)
    assert np.array_equal(np.union1d(inner, val), train)
    assert np.intersect1d(inner, val).size == 0
    assert val.size == max(2, round(fraction * n_train)) and inner.size >= 2
    again = inner_validation(brain, train, kind, fraction=fraction, seed=seed)
    assert np.array_equal(again[1], val)
    if kind == "spatial":
        # a spatial block: some validation region has every validation region at least as
        # close as every inner-training region
        d = brain.distances
        assert any(d[s, val].max() <= d[s, inner].min() for s in val)


def test_inner_validation_rejects_bad_input():
    brain = brain_from_coords(random_coords(20, 0, None))
    with pytest.raises(ValueError, match="fraction"):
        inner_validation(brain, np.arange(10), "random", fraction=1.5)
    with pytest.raises(ValueError, match="cannot give"):
        inner_validation(brain, np.arange(3), "random")
    with pytest.raises(ValueError, match="must lie in"):
        inner_validation(brain, np.arange(15, 25), "random")
