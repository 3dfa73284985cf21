"""The "anatomical" null family: what it keeps, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spatiomol.data.brain import Brain
from spatiomol.data.homology import homologue_partner
from spatiomol.nulls import anatomical, draw_nulls, generate_nulls
from spatiomol.nulls.families import FAMILIES


def inverse_distance(coords):
    d = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    with np.errstate(divide="ignore"):
        w = 1.0 / d
    np.fill_diagonal(w, 0.0)
    return w


def moran_i(x, w):
    """Moran's I of each column, written out: (n / S0) Σ_ij w_ij z_i z_j / Σ_i z_i²."""
    z = x - x.mean(axis=0)
    return x.shape[0] / w.sum() * np.array([z[:, j] @ w @ z[:, j] for j in range(x.shape[1])]) / (z**2).sum(axis=0)


@pytest.fixture(scope="module")
def s100_nulls(hcp_s100):
    draws = draw_nulls(hcp_s100, 12, seed=5, method="anatomical")
    return draws, draws.expression(hcp_s100.X, np.arange(12))


@pytest.fixture
def unremapped(monkeypatch):
    """The nulls before the rank remapping (the randomisation's own guarantees)."""
    monkeypatch.setattr(anatomical, "rank_remap", lambda null, true: null)


def _groups(brain):
    keys = pd.Series(list(zip(brain.structure, brain.hemisphere)))
    return [np.flatnonzero(keys == key) for key in keys.unique()]


def test_each_group_keeps_its_values_and_mean_profile(hcp_s100, s100_nulls):
    _, nulls = s100_nulls
    X = hcp_s100.X
    for rows in _groups(hcp_s100):
        for null in nulls:
            np.testing.assert_array_equal(np.sort(null[rows], axis=0), np.sort(X[rows], axis=0))
            np.testing.assert_allclose(null[rows].mean(axis=0), X[rows].mean(axis=0), atol=1e-12)
    # and the nulls are not the true brain: within the cortex a gene's null map is
    # uncorrelated with its true map up to the kept expectation given the group means; the
    # genes of one null share its signs, so the nulls are the replicates
    cortex = hcp_s100.structure == "cortex"
    per_null = [
        np.mean([stats.pearsonr(null[cortex, j], X[cortex, j])[0] for j in range(0, X.shape[1], 10)]) for null in nulls
    ]
    assert abs(np.mean(per_null)) < 0.2 and max(per_null) < 0.6


def test_before_remapping_only_the_randomised_directions_change(hcp_s100, unremapped):
    draws = draw_nulls(hcp_s100, 8, seed=2, method="anatomical")
    plan = draws.sampler
    X = hcp_s100.X
    nulls = draws.expression(X, np.arange(8))
    np.testing.assert_allclose(plan.rows(X, np.flatnonzero(plan.identity(np.arange(8)))), X[None][:0])
    maps = plan.complement @ plan.vectors
    np.testing.assert_allclose(maps.T @ maps, np.eye(maps.shape[1]), atol=1e-10)
    np.testing.assert_allclose(plan.fixed.T @ maps, 0.0, atol=1e-10)
    for null in nulls:
        # the group means are the true ones; the change lies in the randomised directions
        np.testing.assert_allclose(plan.fixed.T @ null, plan.fixed.T @ X, atol=1e-10)
        change = null - X
        np.testing.assert_allclose(maps @ (maps.T @ change), change, atol=1e-10)
        assert np.linalg.norm(change) > 0.1 * np.linalg.norm(X - X.mean(axis=0))


def test_the_covariance_fit_recovers_a_planted_model():
    rng = np.random.default_rng(0)
    coords = rng.uniform(-60, 60, size=(60, 3))
    structure = np.where(np.arange(60) < 48, "cortex", "subcortex")
    hemisphere = np.where(coords[:, 0] < 0, "L", "R")
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    dm = anatomical.mirrored_distances(coords)
    fixed, _ = anatomical._group_indicators(structure, hemisphere)
    complement = anatomical._complement(fixed)
    projector = complement @ complement.T
    planted = 0.6 * np.exp(-d / 20.0) + 0.3 * np.exp(-dm / 45.0) + 0.1 * np.eye(60)
    X = np.linalg.cholesky(planted) @ rng.standard_normal((60, 20000))
    model = anatomical.fit_covariance(projector @ X, d, dm, projector)
    got, want = projector @ model.matrix @ projector, projector @ planted @ projector
    assert np.linalg.norm(got - want) < 0.05 * np.linalg.norm(want)
    assert model.nugget == pytest.approx(0.1, rel=0.2)
    # group effects: each (structure, hemisphere) group's own effect on top of the spatial model
    planted_effects = np.array([0.3, 0.3, 0.6, 0.6])  # cortex/L, cortex/R, subcortex/L, subcortex/R
    effects = (fixed > 0) @ (np.sqrt(planted_effects)[:, None] * rng.standard_normal((4, 20000)))
    fitted = anatomical.fit_group_effects(X + effects, fixed, planted)
    np.testing.assert_allclose(fitted, planted_effects, atol=0.1)


def test_the_verdict_on_a_statistic_is_calibrated_on_brains_drawn_from_the_model():
    """Exchangeability: on Gaussian brains whose covariance has the model's form, the rank of
    the true brain's statistics among 19 nulls is uniform (P(p ≤ 0.05) = 0.05). Statistics
    the nulls do not keep: a gene's Moran's I, its correlation with an anterior-posterior axis."""
    rng = np.random.default_rng(1)
    n_regions, n_brains, k = 40, 400, 19
    coords = rng.uniform(-60, 60, size=(n_regions, 3))
    regions = pd.DataFrame(
        {
            "label": [f"r{i}" for i in range(n_regions)],
            "hemisphere": np.where(coords[:, 0] < 0, "L", "R"),
            "structure": np.where(np.arange(n_regions) < 32, "cortex", "subcortex"),
            "network": "x",
        }
    ).assign(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2])
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    cov = (
        0.5 * np.exp(-d / 25.0) + 0.4 * np.exp(-anatomical.mirrored_distances(coords) / 25.0) + 0.1 * np.eye(n_regions)
    )
    root = np.linalg.cholesky(cov)
    w = inverse_distance(coords)
    hits = np.zeros(2)
    for b in range(n_brains):
        X = root @ rng.standard_normal((n_regions, 60))
        brain = Brain("sim", regions, X, tuple(f"g{j}" for j in range(60)), np.eye(n_regions))
        nulls = draw_nulls(brain, k, seed=b, method="anatomical").expression(X, np.arange(k))
        for s, statistic in enumerate(
            (lambda Y: moran_i(Y[:, :1], w)[0], lambda Y: np.corrcoef(Y[:, 0], coords[:, 1])[0, 1])
        ):
            true, null = statistic(X), np.array([statistic(n) for n in nulls])
            hits[s] += (1 + np.sum(null >= true)) / (1 + k) <= 0.05
    # the 99.9% band of Binomial(n_brains, 0.05) around the nominal rate
    low, high = stats.binom.ppf([0.0005, 0.9995], n_brains, 0.05) / n_brains
    rates = hits / n_brains
    assert np.all((rates >= low) & (rates <= high)), (rates, low, high)


def test_after_remapping_anatomy_is_kept_and_whole_brain_moran_is_not(hcp_s100, s100_nulls):
    """The issue's measurements: Moran nulls destroy the structure contrast and much of the
    homotopy; the anatomical ones keep the contrast exactly and most of the homotopy."""
    _, nulls = s100_nulls
    X = hcp_s100.X
    moran = draw_nulls(hcp_s100, 12, seed=5, method="moran").expression(X, np.arange(12))
    cortex = hcp_s100.structure == "cortex"

    def contrast(Y):  # correlation over genes of the cortex-minus-subcortex mean difference with the true one
        return np.corrcoef(Y[cortex].mean(0) - Y[~cortex].mean(0), X[cortex].mean(0) - X[~cortex].mean(0))[0, 1]

    partner = homologue_partner(hcp_s100)
    left = np.flatnonzero(hcp_s100.hemisphere == "L")

    def homotopic_cge(Y):  # mean correlation over genes between homologous regions
        Z = Y - Y.mean(axis=1, keepdims=True)
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        return np.mean(np.sum(Z[left] * Z[partner[left]], axis=1))

    assert min(contrast(n) for n in nulls) > 0.999999
    assert np.mean([contrast(n) for n in moran]) < 0.5
    true_h = homotopic_cge(X)  # 0.80 on hcp-s100
    anat_h = np.mean([homotopic_cge(n) for n in nulls])
    moran_h = np.mean([homotopic_cge(n) for n in moran])
    assert true_h - 0.2 < anat_h < true_h and moran_h < anat_h - 0.1
    # gene-gene correlations and each gene's skew survive the remapping
    iu = np.triu_indices(X.shape[1], 1)
    g0 = np.corrcoef(X.T)[iu]
    assert min(np.corrcoef(np.corrcoef(n.T)[iu], g0)[0, 1] for n in nulls[:4]) > 0.95
    np.testing.assert_allclose(np.abs(stats.skew(nulls[0], axis=0)).mean(), np.abs(stats.skew(X, axis=0)).mean())
    assert np.abs(stats.skew(moran[0], axis=0)).mean() < 0.6 * np.abs(stats.skew(X, axis=0)).mean()


def test_rank_remap_equals_a_rankdata_reference():
    rng = np.random.default_rng(0)
    null = rng.standard_normal((3, 9, 4))
    true = rng.gamma(2.0, size=(9, 4))
    out = anatomical.rank_remap(null, true)
    for k in range(3):
        for j in range(4):
            ranks = stats.rankdata(null[k, :, j], method="ordinal").astype(int) - 1
            np.testing.assert_array_equal(out[k, :, j], np.sort(true[:, j])[ranks])


def _small_brain(structure, hemisphere, labels, seed=0):
    rng = np.random.default_rng(seed)
    n = len(labels)
    coords = rng.normal(0, 30, size=(n, 3))
    regions = pd.DataFrame({"label": labels, "hemisphere": hemisphere, "structure": structure, "network": "x"}).assign(
        x=coords[:, 0], y=coords[:, 1], z=coords[:, 2]
    )
    X = rng.random((n, 5))
    return Brain("small", regions, X, tuple(f"g{k}" for k in range(5)), np.eye(n))


def test_fallbacks_a_one_region_group_is_kept_and_midline_regions_are_randomised():
    labels = ["L_a", "L_b", "L_c", "R_a", "R_b", "R_c", "vermis1", "vermis2", "vermis3", "brainstem"]
    structure = ["cortex"] * 6 + ["cerebellum"] * 3 + ["brainstem"]
    hemisphere = ["L"] * 3 + ["R"] * 3 + ["B"] * 4
    brain = _small_brain(structure, hemisphere, labels)
    draws = draw_nulls(brain, 16, seed=0, method="anatomical")
    summary = draws.region_groups
    assert summary["groups"] == {"brainstem/B": 1, "cerebellum/B": 3, "cortex/L": 3, "cortex/R": 3}
    assert summary["kept_regions"] == ["brainstem"]
    nulls = draws.expression(brain.X, np.arange(16))
    np.testing.assert_array_equal(nulls[:, 9], np.broadcast_to(brain.X[9], (16, 5)))  # its own mean: kept
    assert not all(np.array_equal(n[6:9], brain.X[6:9]) for n in nulls)  # the vermis moves


def test_a_brain_with_nothing_to_randomise_is_refused_by_name():
    brain = _small_brain(["cortex", "subcortex"], ["L", "R"], ["a", "b"])
    with pytest.raises(ValueError, match=r"method 'anatomical': brain 'small' has nothing to randomise.*cortex/L: 1"):
        draw_nulls(brain, 4, method="anatomical")


def test_generate_nulls_draws_distinct_reproducible_anatomical_nulls(hcp_s100):
    spec = FAMILIES["anatomical"]
    assert not spec.cge_match_default and not spec.spin and spec.calibrated
    a = generate_nulls(hcp_s100, n=40, top=10, method="anatomical", seed=3)
    b = generate_nulls(hcp_s100, n=40, top=10, method="anatomical", seed=3)
    ea = np.stack([a.null_expression(hcp_s100.X, k) for k in range(10)])
    np.testing.assert_array_equal(ea, np.stack([b.null_expression(hcp_s100.X, k) for k in range(10)]))
    assert len({e.tobytes() for e in ea}) == 10
    assert a.metadata["method"] == "anatomical"
