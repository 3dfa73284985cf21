"""CGE–distance curves and their fits, against scipy/numpy references and known parameters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from spatiomol.nulls import cge
from spatiomol.nulls.spins import plan_spins, spin_batch


def _reference_curve(X, distances, width=5.0):
    """The paper's path: np.corrcoef of the (permuted) matrix, binned_statistic on 5 mm bins."""
    i, j = np.triu_indices(X.shape[0], k=1)
    d = distances[i, j]
    edges = np.arange(0, d.max() + width, width)
    means, _, _ = stats.binned_statistic(d, np.corrcoef(X)[i, j], statistic="mean", bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = ~np.isnan(means)
    return centres[keep], means[keep]


def _sse(centres, curve, sa_lambda, sa_inf):
    return float(((curve - cge.exponential_curve(centres, sa_inf, sa_lambda)) ** 2).sum())


def _curve_fit(centres, curve):
    popt, _ = optimize.curve_fit(
        cge.exponential_curve, centres, curve, p0=[0, 10], bounds=([-1, 0], [1, 100]), maxfev=5000
    )
    return popt[1], popt[0]  # (SA_lambda, SA_inf)


@pytest.fixture(scope="module")
def real_curves(hcp_s100):
    """True curve and 30 spin-null curves of hcp-s100, computed the reference way."""
    plan = plan_spins(hcp_s100, 30, np.random.default_rng(8))
    perms, _ = spin_batch(plan, np.arange(30), hcp_s100.n_regions)
    centres, true_curve = _reference_curve(hcp_s100.X, hcp_s100.distances)
    null_curves = np.array([_reference_curve(hcp_s100.X[p], hcp_s100.distances)[1] for p in perms])
    return centres, true_curve, perms, null_curves


# ----------------------------------------------------------------- binned curves
def test_binned_curves_equal_the_reference_path_without_recomputing_cge(hcp_s100, real_curves):
    centres, true_curve, perms, null_curves = real_curves
    bins = cge.DistanceBins.from_distances(hcp_s100.distances, 5.0)
    matrix = cge.correlated_gene_expression(hcp_s100.X)
    np.testing.assert_allclose(bins.centres, centres)
    np.testing.assert_allclose(bins.curve(matrix), true_curve, rtol=0, atol=1e-13)
    np.testing.assert_allclose(bins.null_curves(matrix, perms), null_curves, rtol=0, atol=1e-13)
    assert bins.counts.sum() == hcp_s100.n_regions * (hcp_s100.n_regions - 1) // 2


def test_bins_follow_binned_statistic_edge_rule():
    # distances exactly on edges go to the upper bin, the maximum to the last (closed) bin
    distances = np.array([[0.0, 5.0, 10.0], [5.0, 0.0, 2.5], [10.0, 2.5, 0.0]])
    bins = cge.DistanceBins.from_distances(distances, 5.0)
    np.testing.assert_array_equal(bins.edges, [0.0, 5.0, 10.0])
    matrix = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    # bin [0, 5): pair (1, 2) at 2.5 mm; bin [5, 10]: pairs (0, 1) at 5 mm and (0, 2) at 10 mm
    np.testing.assert_allclose(bins.curve(matrix), [0.6, 0.3])
    ref, _, _ = stats.binned_statistic([5.0, 10.0, 2.5], [0.2, 0.4, 0.6], "mean", bins=bins.edges)
    np.testing.assert_allclose(bins.curve(matrix), ref)


# ------------------------------------------------------------------------ fits
def test_cubic_fit_equals_polyfit_on_real_curves(real_curves):
    centres, true_curve, _, null_curves = real_curves
    curves = np.vstack([true_curve, null_curves])
    expected = np.array([np.polyfit(centres, c, 3) for c in curves])
    np.testing.assert_allclose(cge.fit_cubic(centres, curves), expected, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize(
    ("sa_lambda", "sa_inf"),
    [(3.0, 0.4), (12.0, -0.3), (30.0, 0.1), (55.0, -0.8), (99.0, 0.9), (45.0, -1.0), (20.0, 0.95)],
)
def test_exponential_fit_recovers_known_parameters(sa_lambda, sa_inf):
    centres = np.arange(2.5, 170, 5.0)
    curve = cge.exponential_curve(centres, sa_inf, sa_lambda)
    fitted = cge.fit_exponential(centres, curve[None])[0]
    np.testing.assert_allclose(fitted, [sa_lambda, sa_inf], rtol=1e-6, atol=1e-9)


def test_exponential_fit_recovers_parameters_from_noisy_curves_in_batch():
    rng = np.random.default_rng(0)
    centres = np.arange(2.5, 160, 5.0)
    truth = np.column_stack([rng.uniform(5, 90, 200), rng.uniform(-0.6, 0.6, 200)])
    curves = np.array([cge.exponential_curve(centres, s, lam) for lam, s in truth])
    noisy = curves + rng.normal(0, 0.01, curves.shape)
    fitted = cge.fit_exponential(centres, noisy)
    # recovery to the precision the noise allows, and never a worse optimum than curve_fit
    assert np.median(np.abs(fitted[:, 0] - truth[:, 0]) / truth[:, 0]) < 0.05
    assert np.median(np.abs(fitted[:, 1] - truth[:, 1])) < 0.02
    for k in range(0, 200, 10):
        ref = _curve_fit(centres, noisy[k])
        assert _sse(centres, noisy[k], *fitted[k]) <= _sse(centres, noisy[k], *ref) * (1 + 1e-9)
        np.testing.assert_allclose(fitted[k], ref, rtol=1e-4, atol=1e-6)


def test_exponential_fit_agrees_with_curve_fit_on_real_curves(real_curves):
    centres, true_curve, _, null_curves = real_curves
    curves = np.vstack([true_curve, null_curves])
    fitted = cge.fit_exponential(centres, curves)
    agree = 0
    for k, curve in enumerate(curves):
        ref = _curve_fit(centres, curve)
        ours, theirs = _sse(centres, curve, *fitted[k]), _sse(centres, curve, *ref)
        assert ours <= theirs * (1 + 1e-9) + 1e-15
        if np.allclose(fitted[k], ref, rtol=1e-4, atol=1e-5):
            agree += 1
        else:  # only where the objective is flat in SA_lambda (equal SSE) may they differ
            assert ours == pytest.approx(theirs, rel=1e-6)
    assert agree >= len(curves) - 2


def test_exponential_fit_respects_bounds_like_curve_fit():
    centres = np.arange(2.5, 120, 5.0)
    rising = 1.6 - 0.6 * np.exp(-centres / 20.0)  # wants SA_inf = 1.6 > 1
    fitted = cge.fit_exponential(centres, rising[None])[0]
    ref = _curve_fit(centres, rising)
    assert fitted[1] == 1.0 and ref[1] == pytest.approx(1.0)
    slow = cge.exponential_curve(centres, 0.2, 400.0)  # wants SA_lambda = 400 > 100
    fitted = cge.fit_exponential(centres, slow[None])[0]
    ref = _curve_fit(centres, slow)
    assert fitted[0] == pytest.approx(100.0) and ref[0] == pytest.approx(100.0, rel=1e-4)
    assert fitted[1] == pytest.approx(ref[1], abs=1e-5)


# ------------------------------------------------------------------ CGE inputs
def test_pca_scores_keep_the_smallest_number_of_components_reaching_the_variance(hcp_s100):
    X = hcp_s100.X
    scores = cge.pca_scores(X, 0.95)
    centred = X - X.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(explained, 0.95) + 1)
    assert scores.shape == (X.shape[0], k)
    np.testing.assert_allclose(np.abs(scores), np.abs(u[:, :k] * s[:k]), atol=1e-8)


def test_bad_expression_raises_clear_errors():
    X = np.random.default_rng(0).normal(size=(5, 4))
    X[2] = np.nan
    with pytest.raises(ValueError, match=r"rows \[2\].*NaN.*impute"):
        cge.correlated_gene_expression(X, what="brain 'toy' expression (X)")
    X[2] = 1.0
    with pytest.raises(ValueError, match="constant expression"):
        cge.correlated_gene_expression(X)
    with pytest.raises(ValueError, match="variance must be in"):
        cge.pca_scores(np.eye(4) + 0.1, 1.5)
