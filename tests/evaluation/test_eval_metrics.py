"""Every metric against an independent computation (scipy, scikit-learn, pyriemann, by hand)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.metrics import (
    edges_to_matrix,
    evaluate,
    geodesic_distance,
    mae,
    mse,
    pearson_r,
    r2,
    regularize_spd,
    riemann_distance,
    spearman_rho,
    stratum_masks,
    summarize,
)
from spatiomol.evaluation.splits import make_splits

try:  # pyriemann >= 0.9
    from pyriemann.geometry.distance import distance_riemann
except ImportError:  # pragma: no cover - older pyriemann
    from pyriemann.utils.distance import distance_riemann


def hand_brain(coords, hemispheres, networks, Y, scale="r") -> Brain:
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    regions = pd.DataFrame(
        {
            "label": [f"r{k}" for k in range(n)],
            "hemisphere": hemispheres,
            "structure": "cortex",
            "network": networks,
            "x": coords[:, 0],
            "y": coords[:, 1],
            "z": coords[:, 2],
        }
    )
    return Brain(
        name="hand", regions=regions, X=np.zeros((n, 1)), genes=("G",), Y=np.asarray(Y, float), target_scale=scale
    )


def spd(eigenvalues, seed) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return (q * np.asarray(eigenvalues, float)) @ q.T


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(60, 30, decay_weight=0.6, signal_scale=0.25, noise=0.05, seed=3)


def rows_to_dict(rows):
    return {(r["metric"], r["stratum"]): r for r in rows}


# ------------------------------------------------------------------ elementwise
def test_hand_worked_elementwise_metrics():
    t, p = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 3, 5])
    assert mse(t, p) == pytest.approx(0.5)
    assert mae(t, p) == pytest.approx(0.5)
    assert r2(t, p) == pytest.approx(1 - 2 / 5)
    assert pearson_r(t, p) == pytest.approx(5 / math.sqrt(30))
    assert spearman_rho(t, p) == pytest.approx(math.sqrt(4.5 / 5))


def test_global_metrics_match_scipy_and_sklearn(brain):
    split = make_splits(brain, "spatial", n_repeats=1, seed=5)[1]
    i, j = split.test_pairs()
    y_true = brain.targets(i, j)
    rng = np.random.default_rng(0)
    # rounded predictions create ties, exercising the average-rank rule of Spearman rho
    y_pred = np.round(0.7 * y_true + rng.normal(0, 0.08, i.size) + 0.05, 2)
    got = rows_to_dict(evaluate(brain, i, j, y_pred))
    assert got["pearson", "all"]["value"] == pytest.approx(scipy.stats.pearsonr(y_true, y_pred)[0], abs=1e-12)
    assert got["spearman", "all"]["value"] == pytest.approx(scipy.stats.spearmanr(y_true, y_pred)[0], abs=1e-12)
    assert got["r2", "all"]["value"] == pytest.approx(r2_score(y_true, y_pred), abs=1e-12)
    assert got["mse", "all"]["value"] == pytest.approx(mean_squared_error(y_true, y_pred), abs=1e-14)
    assert got["mae", "all"]["value"] == pytest.approx(mean_absolute_error(y_true, y_pred), abs=1e-14)
    assert all(got[m, "all"]["n_edges"] == i.size for m in ("pearson", "spearman", "r2", "mse", "mae", "geodesic"))
    assert [r["metric"] for r in evaluate(brain, i, j, y_pred)[:6]] == [
        "pearson",
        "spearman",
        "r2",
        "mse",
        "mae",
        "geodesic",
    ]


def test_degenerate_cases_follow_references():
    t = np.array([0.2, 0.2, 0.2, 0.2])
    p = np.array([0.1, 0.3, 0.2, 0.25])
    assert math.isnan(pearson_r(t, p)) and math.isnan(pearson_r(p, t))
    assert r2(t, p) == r2_score(t, p) == 0.0
    assert r2(t, t) == r2_score(t, t) == 1.0
    assert math.isnan(pearson_r(np.array([1.0]), np.array([2.0])))
    assert pearson_r(p, -p) == pytest.approx(-1.0)


# --------------------------------------------------------------------- geodesic
def test_riemann_distance_hand_worked():
    b = np.diag([math.e, math.e**2, 1.0])
    assert riemann_distance(np.eye(3), b) == pytest.approx(math.sqrt(5))
    assert riemann_distance(b, np.eye(3)) == pytest.approx(math.sqrt(5))


@pytest.mark.parametrize("seed", range(4))
def test_riemann_distance_matches_pyriemann_and_scipy(seed):
    rng = np.random.default_rng(seed)
    k = 3 + seed * 4
    a = spd(rng.uniform(0.05, 3.0, k), seed)
    b = spd(rng.uniform(0.01, 5.0, k), seed + 100)
    ours = riemann_distance(a, b)
    assert ours == pytest.approx(distance_riemann(a, b), rel=1e-10)
    a_inv_sqrt = np.linalg.inv(scipy.linalg.sqrtm(a))
    reference = np.linalg.norm(scipy.linalg.logm(a_inv_sqrt @ b @ a_inv_sqrt), "fro")
    assert ours == pytest.approx(np.real(reference), rel=1e-8)
    # affine invariance and symmetry, properties of this metric
    w = rng.normal(size=(k, k))
    assert riemann_distance(w @ a @ w.T, w @ b @ w.T) == pytest.approx(ours, rel=1e-7)
    assert riemann_distance(b, a) == pytest.approx(ours, rel=1e-10)


def test_regularize_lifts_only_small_eigenvalues():
    eigenvalues = np.array([-0.5, 0.0, 1e-4, 0.2, 2.0])
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))
    m = (q * eigenvalues) @ q.T
    expected = (q * np.array([1e-3, 1e-3, 1e-3, 0.2, 2.0])) @ q.T
    out = regularize_spd(m)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(scipy.linalg.eigh(out, eigvals_only=True), [1e-3, 1e-3, 1e-3, 0.2, 2.0], atol=1e-12)
    healthy = spd([0.5, 1.0, 1.5], 2)
    np.testing.assert_allclose(regularize_spd(healthy), healthy, atol=1e-13)


def venkatesh_reference(fc1, fc2, eig_thresh=1e-3):
    """Venkatesh et al. (2020) reference formula: SVD of FC1 with lifted values, then of M."""
    u, s, _ = np.linalg.svd(fc1)
    s = np.maximum(s, eig_thresh)
    fc1_inv_sqrt = u @ np.diag(s**-0.5) @ u.T
    _, s_m, _ = np.linalg.svd(fc1_inv_sqrt @ fc2 @ fc1_inv_sqrt)
    return float(np.sqrt(np.sum(np.log(s_m) ** 2)))


def correlation_matrix(k, seed):
    """A well-conditioned correlation matrix: an SPD matrix scaled to unit diagonal."""
    s = spd(np.random.default_rng(seed).uniform(0.2, 3.0, k), seed)
    scale = 1 / np.sqrt(np.diag(s))
    c = s * np.outer(scale, scale)
    assert np.linalg.eigvalsh(c).min() > 1e-2
    return c


def test_geodesic_of_indefinite_prediction_matches_pyriemann():
    true = correlation_matrix(8, 0)
    pred = true + np.random.default_rng(3).normal(0, 0.4, size=(8, 8))
    pred = (pred + pred.T) / 2
    np.fill_diagonal(pred, 0.0)  # the diagonal is ignored: geodesic_distance sets it to 1
    assert np.linalg.eigvalsh(np.where(np.eye(8, dtype=bool), 1.0, pred)).min() < 0  # indefinite

    def lift(m):
        m = m.copy()
        np.fill_diagonal(m, 1.0)
        w, v = scipy.linalg.eigh(m)
        return (v * np.maximum(w, 1e-3)) @ v.T

    expected = distance_riemann(lift(true), lift(pred))
    assert geodesic_distance(true, pred) == pytest.approx(expected, rel=1e-9)
    # on well-conditioned correlation matrices the Venkatesh code gives the same number
    other = correlation_matrix(8, 10)
    assert geodesic_distance(true, other) == pytest.approx(venkatesh_reference(true, other), rel=1e-9)
    assert geodesic_distance(true, true) == pytest.approx(0.0, abs=1e-6)


def test_evaluate_geodesic_uses_test_region_connectomes(brain):
    split = make_splits(brain, "random", n_repeats=1, seed=2)[0]
    i, j = split.test_pairs()
    y_pred = brain.targets(i, j) * 0.5 + 0.1
    got = rows_to_dict(evaluate(brain, i, j, y_pred))["geodesic", "all"]["value"]
    test = split.test
    true_matrix = brain.Y[np.ix_(test, test)].copy()
    pred_matrix = np.empty_like(true_matrix)
    for a, b, v in zip(i, j, y_pred):
        pred_matrix[np.searchsorted(test, a), np.searchsorted(test, b)] = v
        pred_matrix[np.searchsorted(test, b), np.searchsorted(test, a)] = v
    np.fill_diagonal(true_matrix, 1.0)
    np.fill_diagonal(pred_matrix, 1.0)
    expected = distance_riemann(regularize_spd(true_matrix), regularize_spd(pred_matrix))
    assert got == pytest.approx(expected, rel=1e-9)
    # edge order and orientation do not matter
    order = np.random.default_rng(0).permutation(i.size)
    shuffled = rows_to_dict(evaluate(brain, j[order], i[order], y_pred[order]))
    assert shuffled["geodesic", "all"]["value"] == pytest.approx(got, rel=1e-12)
    assert shuffled["pearson", "distance:short"]["value"] == pytest.approx(
        rows_to_dict(evaluate(brain, i, j, y_pred))["pearson", "distance:short"]["value"], rel=1e-12
    )


def test_geodesic_is_nan_for_incomplete_edge_sets(brain):
    i, j = pairs_within(np.arange(12))
    assert edges_to_matrix(i[:-1], j[:-1], np.zeros(i.size - 1)) is None
    doubled = np.concatenate([i[:-1], i[:1]]), np.concatenate([j[:-1], j[:1]])
    assert edges_to_matrix(*doubled, np.zeros(i.size)) is None
    rows = rows_to_dict(evaluate(brain, i[:-1], j[:-1], brain.targets(i[:-1], j[:-1])))
    assert math.isnan(rows["geodesic", "all"]["value"]) and rows["geodesic", "all"]["n_edges"] == i.size - 1
    assert rows["pearson", "all"]["value"] == pytest.approx(1.0)


def test_diverged_prediction_gives_nan_geodesic_and_every_other_metric(brain):
    """Finite but huge predictions (a diverged fit) make the SPD distance fail: NaN, not a crash."""
    split = make_splits(brain, "random", n_repeats=1, seed=2)[0]
    i, j = split.test_pairs()
    y_true = brain.targets(i, j)
    y_pred = np.random.default_rng(0).normal(0.0, 1e15, i.size)
    # the distance itself is not computable on these matrices ...
    k = split.test.size
    pred_matrix = np.eye(k)
    pred_matrix[np.triu_indices(k, 1)] = y_pred
    pred_matrix = np.triu(pred_matrix, 1) + np.triu(pred_matrix, 1).T + np.eye(k)
    with pytest.raises((ValueError, np.linalg.LinAlgError)):
        geodesic_distance(brain.Y[np.ix_(split.test, split.test)], pred_matrix)
    # ... so evaluate reports NaN for it and still scores everything else
    got = rows_to_dict(evaluate(brain, i, j, y_pred))
    assert math.isnan(got["geodesic", "all"]["value"]) and got["geodesic", "all"]["n_edges"] == i.size
    assert got["pearson", "all"]["value"] == pytest.approx(scipy.stats.pearsonr(y_true, y_pred)[0], abs=1e-12)
    assert got["spearman", "all"]["value"] == pytest.approx(scipy.stats.spearmanr(y_true, y_pred)[0], abs=1e-12)
    assert got["r2", "all"]["value"] == pytest.approx(r2_score(y_true, y_pred), rel=1e-9)
    assert got["mse", "all"]["value"] == pytest.approx(mean_squared_error(y_true, y_pred), rel=1e-12)
    assert got["mae", "all"]["value"] == pytest.approx(mean_absolute_error(y_true, y_pred), rel=1e-12)
    short = got["pearson", "distance:short"]
    mask = brain.distances[i, j] < 60.0
    assert short["n_edges"] == int(mask.sum())
    assert short["value"] == pytest.approx(scipy.stats.pearsonr(y_true[mask], y_pred[mask])[0], abs=1e-12)


def test_geodesic_on_fisher_z_scale_compares_correlation_matrices(brain):
    """fisher_z targets: the geodesic is that of tanh(truth) vs tanh(prediction)."""
    z = np.arctanh(np.clip(brain.Y, -0.999, 0.999))
    np.fill_diagonal(z, 0.0)
    z_brain = brain.replace(Y=z, target_scale="fisher_z")
    r_brain = brain.replace(Y=np.tanh(z), target_scale="r")
    split = make_splits(brain, "spatial", n_repeats=1, seed=5)[1]
    i, j = split.test_pairs()
    z_pred = 0.6 * z_brain.targets(i, j) + np.random.default_rng(1).normal(0.0, 0.2, i.size)
    on_z = rows_to_dict(evaluate(z_brain, i, j, z_pred))["geodesic", "all"]["value"]
    on_r = rows_to_dict(evaluate(r_brain, i, j, np.tanh(z_pred)))["geodesic", "all"]["value"]
    # independent reference: pyriemann on the tanh-mapped test-region matrices
    test = split.test
    true_matrix = np.tanh(z[np.ix_(test, test)])
    pred_matrix = np.eye(test.size)
    a, b = np.searchsorted(test, i), np.searchsorted(test, j)
    pred_matrix[a, b] = pred_matrix[b, a] = np.tanh(z_pred)
    np.fill_diagonal(true_matrix, 1.0)
    expected = distance_riemann(regularize_spd(true_matrix), regularize_spd(pred_matrix))
    assert on_z == pytest.approx(on_r, rel=1e-9)
    assert on_z == pytest.approx(expected, rel=1e-9)
    # raw targets (structural connectivity) keep the values as they are
    raw_brain = brain.replace(Y=z, target_scale="raw")
    on_raw = rows_to_dict(evaluate(raw_brain, i, j, z_pred))["geodesic", "all"]["value"]
    raw_true = z[np.ix_(test, test)].copy()
    raw_pred = np.eye(test.size)
    raw_pred[a, b] = raw_pred[b, a] = z_pred
    np.fill_diagonal(raw_true, 1.0)
    assert on_raw == pytest.approx(distance_riemann(regularize_spd(raw_true), regularize_spd(raw_pred)), rel=1e-9)


# ----------------------------------------------------------------------- strata
def reference_strata(brain, i, j):
    """Edge lists of every stratum by explicit loops over the documented rules."""
    strata: dict[str, list[int]] = {}
    regions = brain.regions
    networks = []
    for name in ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default", "Subcortex"):
        if name in set(regions["network"]):
            networks.append(name)
    for e, (a, b) in enumerate(zip(i, j)):
        ra, rb = regions.iloc[a], regions.iloc[b]
        d = math.dist((ra.x, ra.y, ra.z), (rb.x, rb.y, rb.z))
        band = "short" if d < 60 else ("mid" if d < 120 else "long")
        strata.setdefault(f"distance:{band}", []).append(e)
        if ra.hemisphere != "B" and rb.hemisphere != "B":
            side = "intra" if ra.hemisphere == rb.hemisphere else "inter"
            strata.setdefault(f"hemisphere:{side}", []).append(e)
        y = brain.Y[a, b]
        level = "strong-positive" if y > 0.3 else ("strong-negative" if y < -0.3 else "weak")
        strata.setdefault(f"strength:{level}", []).append(e)
        for name in networks:
            inside = (ra.network == name) + (rb.network == name)
            if inside == 2:
                strata.setdefault(f"network:{name}:intra", []).append(e)
            elif inside == 1:
                strata.setdefault(f"network:{name}:rest", []).append(e)
    return strata, networks


@pytest.mark.parametrize("which", ["all-edges", "test-edges"])
def test_stratified_pearson_matches_loop_reference(brain, which):
    regions = brain.regions.copy()
    regions.loc[[5, 40], "hemisphere"] = "B"  # midline regions: in neither hemisphere stratum
    b = brain.replace(regions=regions)
    if which == "all-edges":
        i, j = pairs_within(np.arange(b.n_regions))
    else:
        i, j = make_splits(b, "random", n_repeats=1, seed=9)[2].test_pairs()
    y_pred = b.targets(i, j) + np.random.default_rng(4).normal(0, 0.1, i.size)
    got = rows_to_dict(evaluate(b, i, j, y_pred))
    strata, networks = reference_strata(b, i, j)
    names = [
        "distance:short",
        "distance:mid",
        "distance:long",
        "hemisphere:intra",
        "hemisphere:inter",
        "strength:strong-positive",
        "strength:strong-negative",
        "strength:weak",
    ]
    names += [f"network:{n}:{side}" for n in networks for side in ("intra", "rest")]
    stratified = [r["stratum"] for r in evaluate(b, i, j, y_pred) if r["stratum"] != "all"]
    assert stratified == names
    n_nan = 0
    for name in names:
        edges = strata.get(name, [])
        row = got["pearson", name]
        assert row["n_edges"] == len(edges), name
        if len(edges) < 10:
            assert math.isnan(row["value"]), name
            n_nan += 1
        else:
            expected = scipy.stats.pearsonr(b.targets(i, j)[edges], y_pred[edges])[0]
            assert row["value"] == pytest.approx(expected, abs=1e-12), name
    if which == "all-edges":
        assert n_nan == 2  # Cont (3 regions) and Default (4 regions) have < 10 intra edges
        assert got["pearson", "hemisphere:intra"]["n_edges"] + got["pearson", "hemisphere:inter"][
            "n_edges"
        ] == i.size - (2 * (b.n_regions - 2) + 1)  # edges touching either B region are excluded
    else:
        assert n_nan > 0  # a 15-region test set leaves some network strata under 10 edges


def test_stratum_boundaries_hand_worked():
    # regions on the x axis; distances 60 and 120 mm fall in "mid" and "long"
    coords = [[0, 0, 0], [60, 0, 0], [120, 0, 0], [30, 0, 0]]
    y = np.array(
        [
            [1.0, 0.3, -0.3, 0.31],
            [0.3, 1.0, -0.31, 0.0],
            [-0.3, -0.31, 1.0, 0.1],
            [0.31, 0.0, 0.1, 1.0],
        ]
    )
    b = hand_brain(coords, ["L", "R", "R", "B"], ["A", "A", "C", "C"], y)
    i, j = pairs_within(np.arange(4))  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    masks = {k: np.flatnonzero(v).tolist() for k, v in stratum_masks(b, i, j).items()}
    assert masks["distance:short"] == [2, 4]  # 30 mm, 30 mm
    assert masks["distance:mid"] == [0, 3, 5]  # 60, 60, 90 mm
    assert masks["distance:long"] == [1]  # 120 mm
    assert masks["hemisphere:intra"] == [3]  # R-R
    assert masks["hemisphere:inter"] == [0, 1]  # L-R; edges touching B excluded
    assert masks["strength:strong-positive"] == [2]  # 0.31 (0.3 itself is weak)
    assert masks["strength:strong-negative"] == [3]  # -0.31 (-0.3 itself is weak)
    assert masks["strength:weak"] == [0, 1, 4, 5]
    assert masks["network:A:intra"] == [0] and masks["network:A:rest"] == [1, 2, 3, 4]
    assert masks["network:C:intra"] == [5] and masks["network:C:rest"] == [1, 2, 3, 4]
    # Fisher-z targets are thresholded on the r scale: tanh(0.305) = 0.296 is weak
    z = np.arctanh(np.clip(y, -0.99, 0.99))
    z[0, 3] = z[3, 0] = 0.305
    # keep edges (0, 1) and (0, 2) off the boundary: tanh(arctanh(0.3)) may round to 0.30000000000000004
    z[0, 1] = z[1, 0] = np.arctanh(0.29)
    z[0, 2] = z[2, 0] = np.arctanh(-0.29)
    masks_z = stratum_masks(hand_brain(coords, ["L", "R", "R", "B"], ["A", "A", "C", "C"], z, "fisher_z"), i, j)
    assert np.flatnonzero(masks_z["strength:strong-positive"]).tolist() == []
    assert np.flatnonzero(masks_z["strength:strong-negative"]).tolist() == [3]


def test_minimum_of_ten_edges():
    # network A has 5 regions: 10 intra-network edges; dropping one leaves 9 -> NaN
    rng = np.random.default_rng(0)
    n = 9
    coords = rng.uniform(-50, 50, size=(n, 3))
    y = rng.uniform(-0.5, 0.8, size=(n, n))
    y = (y + y.T) / 2
    np.fill_diagonal(y, 1.0)
    b = hand_brain(coords, ["L"] * n, ["A"] * 5 + ["C"] * 4, y)
    i, j = pairs_within(np.arange(n))
    pred = b.targets(i, j) + rng.normal(0, 0.1, i.size)
    full = rows_to_dict(evaluate(b, i, j, pred))["pearson", "network:A:intra"]
    intra = np.flatnonzero((i < 5) & (j < 5))
    assert full["n_edges"] == 10
    assert full["value"] == pytest.approx(scipy.stats.pearsonr(b.targets(i, j)[intra], pred[intra])[0])
    keep = np.setdiff1d(np.arange(i.size), intra[:1])
    cut = rows_to_dict(evaluate(b, i[keep], j[keep], pred[keep]))["pearson", "network:A:intra"]
    assert cut["n_edges"] == 9 and math.isnan(cut["value"])


def test_evaluate_rejects_bad_input(brain):
    i, j = pairs_within(np.arange(6))
    good = brain.targets(i, j)
    with pytest.raises(ValueError, match="equal length"):
        evaluate(brain, i, j, good[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(brain, i, j, np.where(np.arange(i.size) == 3, np.nan, good))
    with pytest.raises(ValueError, match="itself"):
        evaluate(brain, np.array([1, 2]), np.array([1, 3]), np.zeros(2))
    with pytest.raises(ValueError, match="must lie in"):
        evaluate(brain, np.array([1, 2]), np.array([3, 600]), np.zeros(2))
    with pytest.raises(ValueError, match="no edges"):
        evaluate(brain, np.array([], int), np.array([], int), np.array([]))


# -------------------------------------------------------------------- summarize
def test_summarize_mean_sd_over_splits():
    rows = []
    values = {"smt": [0.70, 0.74, np.nan, 0.78], "mlp": [0.60, 0.62, 0.64, 0.66]}
    for model, vals in values.items():
        for split, v in enumerate(vals):
            rows.append(
                {
                    "model": model,
                    "split": split,
                    "metric": "pearson",
                    "stratum": "all",
                    "value": v,
                    "n_edges": 100 + split,
                }
            )
    table = summarize(pd.DataFrame(rows), by=["model"]).set_index("model")
    assert table.loc["smt", "mean"] == pytest.approx(np.mean([0.70, 0.74, 0.78]))
    assert table.loc["smt", "sd"] == pytest.approx(np.std([0.70, 0.74, 0.78], ddof=1))
    assert (table.loc["smt", "n"], table.loc["smt", "n_nan"]) == (3, 1)
    assert table.loc["mlp", "sd"] == pytest.approx(scipy.stats.tstd([0.60, 0.62, 0.64, 0.66]))
    assert table.loc["mlp", "mean_edges"] == pytest.approx(101.5)
    with pytest.raises(ValueError, match="lack columns"):
        summarize(pd.DataFrame(rows), by=["dataset"])


# --------------------------------------------------------------------- real data
def test_evaluate_on_real_hcp_connectome(data_mirror):
    from spatiomol.data.datasets import load_dataset

    hcp = load_dataset("hcp-s100")
    split = make_splits(hcp, "spatial", n_repeats=1, seed=0)[0]
    # a distance rule fitted on the training edges only: quadratic in distance (mm)
    ti, tj = split.train_pairs()
    coef = np.polyfit(hcp.distances[ti, tj], hcp.targets(ti, tj), deg=2)
    i, j = split.test_pairs()
    y_true, y_pred = hcp.targets(i, j), np.polyval(coef, hcp.distances[i, j])
    rows = evaluate(hcp, i, j, y_pred)
    got = rows_to_dict(rows)
    assert got["pearson", "all"]["value"] == pytest.approx(scipy.stats.pearsonr(y_true, y_pred)[0], abs=1e-12)
    assert got["spearman", "all"]["value"] == pytest.approx(scipy.stats.spearmanr(y_true, y_pred)[0], abs=1e-12)
    assert got["r2", "all"]["value"] == pytest.approx(r2_score(y_true, y_pred), abs=1e-12)
    assert got["pearson", "all"]["value"] > 0.15  # distance explains part of real connectivity
    test = split.test
    true_matrix = hcp.Y[np.ix_(test, test)].copy()
    pred_matrix = np.polyval(coef, hcp.distances[np.ix_(test, test)])
    np.fill_diagonal(true_matrix, 1.0)
    np.fill_diagonal(pred_matrix, 1.0)
    expected = distance_riemann(regularize_spd(true_matrix), regularize_spd(pred_matrix))
    assert got["geodesic", "all"]["value"] == pytest.approx(expected, rel=1e-9)
    # the strata of each family partition the edges (no midline regions in this atlas)
    n = i.size
    for family in ("distance", "hemisphere", "strength"):
        assert sum(r["n_edges"] for r in rows if r["stratum"].startswith(family + ":")) == n
    networks = [
        r["stratum"].split(":")[1]
        for r in rows
        if r["stratum"].endswith(":intra") and r["stratum"].startswith("network:")
    ]
    assert networks == ["Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default", "Subcortex"]
