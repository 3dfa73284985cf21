"""Missing expression: exact mirror copies, exact inverse-distance means, drop, and the real 49 regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsRegressor

from spatiomol.data.brain import Brain
from spatiomol.data.datasets import load_dataset
from spatiomol.data.impute import fill_missing, find_homologue, inverse_distance_weights


def _brain(coords, hemisphere, structure, X, subjects=None):
    n = len(coords)
    coords = np.asarray(coords, dtype=float)
    regions = pd.DataFrame(
        {
            "label": [f"r{k}" for k in range(n)],
            "hemisphere": hemisphere,
            "structure": structure,
            "network": ["Unknown"] * n,
            "x": coords[:, 0],
            "y": coords[:, 1],
            "z": coords[:, 2],
        }
    )
    Y = np.arange(n * n, dtype=float).reshape(n, n)
    return Brain(
        name="hand", regions=regions, X=np.asarray(X, dtype=float), genes=("g0", "g1"), Y=Y + Y.T, subjects=subjects
    )


@pytest.fixture
def hand_brain():
    """Hand-worked case, coordinates in mm.

    Left cortex: r0 (-10,0,0) MISSING, r1 (-10,1,0), r2 (-10,0,2), r3 (-10,4,0) [d from r0: 1, 2, 4],
                 r4 (-10,0,0.5) MISSING (so never a source).
    Left subcortex: r5 (-10,0,0.25) has data but is another structure class: never a source.
    Right cortex: r6 (10,0,0) MISSING = homologue of r0 (so r0 must be interpolated),
                  r7 (10,0.2,0.5) has data = homologue of r4 (reflected r4 = (10,0,0.5): d = 0.2 to r7, 0.5 to r6).
    Right subcortex: r8 (10,0,0.3) has data.
    """
    coords = [
        (-10, 0, 0),
        (-10, 1, 0),
        (-10, 0, 2),
        (-10, 4, 0),
        (-10, 0, 0.5),
        (-10, 0, 0.25),
        (10, 0, 0),
        (10, 0.2, 0.5),
        (10, 0, 0.3),
    ]
    hemisphere = ["L"] * 6 + ["R"] * 3
    structure = ["cortex"] * 5 + ["subcortex"] + ["cortex"] * 2 + ["subcortex"]
    nan = [np.nan, np.nan]
    X = [nan, [1.0, 10.0], [2.0, 20.0], [4.0, 40.0], nan, [100.0, 100.0], nan, [7.0, 70.0], [9.0, 90.0]]
    return _brain(coords, hemisphere, structure, X)


def test_hand_worked_mirror_copy_and_inverse_distance_mean(hand_brain):
    out = fill_missing(hand_brain, "mirror-interpolate", n_neighbors=10)
    # r4: contralateral homologue r7 has data -> exact copy
    np.testing.assert_array_equal(out.X[4], [7.0, 70.0])
    # r6 (right): homologue r0 is missing; only measured right cortex region is r7
    np.testing.assert_array_equal(out.X[6], [7.0, 70.0])
    # r0: homologue r6 missing -> inverse-distance mean of r1, r2, r3 at 1, 2, 4 mm:
    # weights (1, 1/2, 1/4) / (7/4) = (4/7, 2/7, 1/7)
    expected = 4 / 7 * np.array([1.0, 10.0]) + 2 / 7 * np.array([2.0, 20.0]) + 1 / 7 * np.array([4.0, 40.0])
    np.testing.assert_allclose(out.X[0], expected, rtol=1e-15)
    assert np.allclose(out.X[0], [12 / 7, 120 / 7])
    # untouched regions are unchanged
    for k in (1, 2, 3, 5, 7, 8):
        np.testing.assert_array_equal(out.X[k], hand_brain.X[k])
    records = {r["label"]: r for r in out.provenance["imputation"]["regions"]}
    assert records["r4"]["method"] == "mirror" and records["r4"]["sources"] == ["r7"]
    assert records["r4"]["homologue_distance_mm"] == pytest.approx(0.2)
    assert records["r0"]["method"] == "interpolate"
    assert records["r0"]["sources"] == ["r1", "r2", "r3"]
    np.testing.assert_allclose(records["r0"]["weights"], [4 / 7, 2 / 7, 1 / 7])
    report = out.provenance["imputation"]
    assert (report["n_missing"], report["n_mirror"], report["n_interpolate"]) == (3, 1, 2)


def test_interpolation_uses_only_the_k_nearest(hand_brain):
    out = fill_missing(hand_brain, "mirror-interpolate", n_neighbors=2)
    expected = (1.0 * np.array([1.0, 10.0]) + 0.5 * np.array([2.0, 20.0])) / 1.5
    np.testing.assert_allclose(out.X[0], expected, rtol=1e-15)


def test_interpolation_matches_sklearn_distance_weighted_knn():
    rng = np.random.default_rng(7)
    n = 40
    coords = rng.normal(scale=20.0, size=(n, 3))
    coords[:, 0] = -np.abs(coords[:, 0]) - 1.0  # all left cortex: no homologues at all
    X = rng.uniform(size=(n, 2))
    missing = rng.choice(n, 6, replace=False)
    X[missing] = np.nan
    brain = _brain(coords, ["L"] * n, ["cortex"] * n, X)
    out = fill_missing(brain, "mirror-interpolate")
    measured = np.setdiff1d(np.arange(n), missing)
    knn = KNeighborsRegressor(n_neighbors=10, weights="distance").fit(coords[measured], X[measured])
    np.testing.assert_allclose(out.X[missing], knn.predict(coords[missing]), rtol=1e-12)


def test_homologue_is_found_by_reflected_position_not_label(hand_brain):
    assert find_homologue(hand_brain, 4) == (7, pytest.approx(0.2))
    assert find_homologue(hand_brain, 0) == (6, 0.0)
    assert find_homologue(hand_brain, 5)[0] == 8  # subcortex maps to subcortex only
    midline = _brain([(0, 0, 0)] * 2, ["B", "B"], ["cortex"] * 2, [[1, 2], [3, 4]])
    assert find_homologue(midline, 0)[0] is None


def test_inverse_distance_weights_with_a_zero_distance():
    np.testing.assert_array_equal(inverse_distance_weights(np.array([0.0, 3.0, 0.0])), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(inverse_distance_weights(np.array([1.0, 3.0])), [0.75, 0.25])


def test_drop_removes_regions_everywhere(hand_brain):
    subjects = np.stack([hand_brain.Y, 2 * hand_brain.Y])
    brain = hand_brain.replace(subjects=subjects)
    out = fill_missing(brain, "drop")
    kept = [1, 2, 3, 5, 7, 8]
    assert list(out.labels) == [f"r{k}" for k in kept]
    np.testing.assert_array_equal(out.X, hand_brain.X[kept])
    np.testing.assert_array_equal(out.Y, hand_brain.Y[np.ix_(kept, kept)])
    np.testing.assert_array_equal(out.subjects[1], 2 * hand_brain.Y[np.ix_(kept, kept)])
    assert out.provenance["imputation"]["dropped"] == ["r0", "r4", "r6"]


def test_keep_leaves_nan_rows_and_records_them(hand_brain):
    out = fill_missing(hand_brain, "keep")
    assert list(out.missing_expression) == [0, 4, 6]
    assert out.provenance["imputation"]["missing"] == ["r0", "r4", "r6"]


def test_bad_input_is_a_clear_error(hand_brain):
    X = hand_brain.X.copy()
    X[1, 0] = np.nan  # partly missing row
    with pytest.raises(ValueError, match=r"regions \['r1'\] \(1 in all\) are partly non-finite"):
        fill_missing(hand_brain.replace(X=X), "mirror-interpolate")
    with pytest.raises(ValueError, match="missing must be one of"):
        fill_missing(hand_brain, "mean")
    lonely = _brain(
        [(-5, 0, 0), (-6, 0, 0), (5, 0, 0)],
        ["L", "L", "R"],
        ["cortex", "subcortex", "cortex"],
        [[np.nan, np.nan], [1.0, 2.0], [np.nan, np.nan]],
    )
    with pytest.raises(ValueError, match="region 'r0' has no expression, its homologue has none"):
        fill_missing(lonely, "mirror-interpolate")


def test_real_schaefer400_fill_is_exactly_as_recorded(data_mirror):
    raw = load_dataset("hcp-s400", missing="keep", mirror=data_mirror)
    filled = load_dataset("hcp-s400", mirror=data_mirror)
    assert raw.missing_expression.size == 49 and filled.missing_expression.size == 0
    report = filled.provenance["imputation"]
    assert len(report["regions"]) == 49 and report["n_mirror"] + report["n_interpolate"] == 49
    index = {label: k for k, label in enumerate(raw.labels)}
    for record in report["regions"]:
        m = index[record["label"]]
        sources = [index[s] for s in record["sources"]]
        assert not np.isnan(raw.X[sources]).any()  # only measured regions are sources
        if record["method"] == "mirror":
            assert raw.hemisphere[sources[0]] != raw.hemisphere[m]
            np.testing.assert_array_equal(filled.X[m], raw.X[sources[0]])
        else:
            assert len(sources) == 10 and all(raw.hemisphere[s] == raw.hemisphere[m] for s in sources)
            np.testing.assert_allclose(filled.X[m], np.asarray(record["weights"]) @ raw.X[sources], rtol=1e-12)
    measured = np.setdiff1d(np.arange(414), raw.missing_expression)
    np.testing.assert_array_equal(filled.X[measured], raw.X[measured])
    dropped = load_dataset("hcp-s400", missing="drop", mirror=data_mirror)
    assert dropped.n_regions == 365
    np.testing.assert_array_equal(dropped.Y, raw.Y[np.ix_(measured, measured)])
