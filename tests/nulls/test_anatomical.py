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


def test_each_structure_keeps_its_values_and_mean_profile(hcp_s100, s100_nulls):
    _, nulls = s100_nulls
    X = hcp_s100.X
    for cls in np.unique(hcp_s100.structure):
        rows = hcp_s100.structure == cls
        for null in nulls:
            np.testing.assert_array_equal(np.sort(null[rows], axis=0), np.sort(X[rows], axis=0))
            np.testing.assert_allclose(null[rows].mean(axis=0), X[rows].mean(axis=0), atol=1e-12)
    # and the nulls are not the true brain: within the cortex a gene's null map is
    # uncorrelated with its true map in expectation (E[M_s] = 0 over the sign draws); the
    # genes of one null share its signs, so the nulls are the replicates
    cortex = hcp_s100.structure == "cortex"
    per_null = [
        np.mean([stats.pearsonr(null[cortex, j], X[cortex, j])[0] for j in range(0, X.shape[1], 10)]) for null in nulls
    ]
    assert abs(np.mean(per_null)) < 3 * np.std(per_null, ddof=1) / np.sqrt(len(per_null))
    assert max(per_null) < 0.9


def test_before_remapping_homotopy_gene_covariance_and_pair_morans_i_are_exact(hcp_s100, unremapped):
    draws = draw_nulls(hcp_s100, 8, seed=2, method="anatomical")
    nulls = draws.expression(hcp_s100.X, np.arange(8))
    X = hcp_s100.X
    partner = homologue_partner(hcp_s100)
    for cls in np.unique(hcp_s100.structure):
        left = np.flatnonzero((hcp_s100.structure == cls) & (hcp_s100.hemisphere == "L"))
        right = partner[left]
        assert (right >= 0).all()
        w = (inverse_distance(hcp_s100.coords[left]) + inverse_distance(hcp_s100.coords[right])) / 2.0
        true_pairs = np.concatenate([X[left], X[right]], axis=1)
        centred = true_pairs - true_pairs.mean(axis=0)
        for null in nulls:
            pairs = np.concatenate([null[left], null[right]], axis=1)
            c = pairs - pairs.mean(axis=0)
            # every inner product of columns: each hemisphere's gene covariance and homotopy
            np.testing.assert_allclose(c.T @ c, centred.T @ centred, atol=1e-9)
            np.testing.assert_allclose(pairs.mean(axis=0), true_pairs.mean(axis=0), atol=1e-12)
            np.testing.assert_allclose(moran_i(pairs, w), moran_i(true_pairs, w), atol=1e-9)
            assert not np.allclose(pairs, true_pairs)


def test_after_remapping_anatomy_is_kept_and_whole_brain_moran_is_not(hcp_s100, s100_nulls):
    """The issue's measurements: Moran nulls destroy the structure contrast and much of the
    homotopy; the anatomical ones keep them (remapping moves them only slightly)."""
    _, nulls = s100_nulls
    X = hcp_s100.X
    moran = draw_nulls(hcp_s100, 12, seed=5, method="moran").expression(X, np.arange(12))
    cortex = hcp_s100.structure == "cortex"

    def contrast(Y):  # correlation over genes of the cortex-minus-subcortex mean difference with the true one
        return np.corrcoef(Y[cortex].mean(0) - Y[~cortex].mean(0), X[cortex].mean(0) - X[~cortex].mean(0))[0, 1]

    partner = homologue_partner(hcp_s100)
    left = np.flatnonzero(hcp_s100.hemisphere == "L")

    def homotopic(Y):  # mean over genes of the left-right correlation across homologous pairs
        return np.mean([stats.pearsonr(Y[left, j], Y[partner[left], j])[0] for j in range(Y.shape[1])])

    assert min(contrast(n) for n in nulls) > 0.999
    assert np.mean([contrast(n) for n in moran]) < 0.5
    true_h = homotopic(X)
    anat_h = [homotopic(n) for n in nulls[:4]]
    moran_h = [homotopic(n) for n in moran[:4]]
    assert max(abs(h - true_h) for h in anat_h) < 0.1
    assert np.mean(moran_h) < true_h - 0.2
    # gene-gene correlations and each gene's skew survive the remapping
    iu = np.triu_indices(X.shape[1], 1)
    g0 = np.corrcoef(X.T)[iu]
    assert min(np.corrcoef(np.corrcoef(n.T)[iu], g0)[0, 1] for n in nulls[:4]) > 0.99
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
    regions = pd.DataFrame(
        {"label": labels, "hemisphere": hemisphere, "structure": structure, "network": "x"}
    ).assign(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2])
    X = rng.random((n, 5))
    return Brain("small", regions, X, tuple(f"g{k}" for k in range(5)), np.eye(n))


def test_fallbacks_one_region_class_kept_and_unpaired_regions_randomised_among_themselves():
    labels = ["L_a", "L_b", "L_c", "R_a", "R_b", "R_c", "vermis1", "vermis2", "vermis3", "brainstem"]
    structure = ["cortex"] * 6 + ["cerebellum"] * 3 + ["brainstem"]
    hemisphere = ["L"] * 3 + ["R"] * 3 + ["B"] * 4
    brain = _small_brain(structure, hemisphere, labels)
    draws = draw_nulls(brain, 16, seed=0, method="anatomical")
    parts = draws.region_groups["structures"]
    assert parts["brainstem"] == {"regions": 1, "homologous_pairs": 0, "unpaired": ["brainstem"], "randomised": False}
    assert parts["cerebellum"]["homologous_pairs"] == 0 and parts["cerebellum"]["randomised"]
    assert parts["cortex"]["homologous_pairs"] == 3
    assert draws.settings["kept_structures"] == ["brainstem"]
    nulls = draws.expression(brain.X, np.arange(16))
    np.testing.assert_array_equal(nulls[:, 9], np.broadcast_to(brain.X[9], (16, 5)))  # its own mean: kept
    assert not all(np.array_equal(n[6:9], brain.X[6:9]) for n in nulls)  # the vermis moves


def test_a_brain_with_nothing_to_randomise_is_refused_by_name():
    brain = _small_brain(["cortex", "subcortex"], ["L", "R"], ["a", "b"])
    with pytest.raises(ValueError, match=r"method 'anatomical': brain 'small' has no structure class.*cortex: 1"):
        draw_nulls(brain, 4, method="anatomical")


def test_duplicate_centroids_are_named():
    brain = _small_brain(["cortex"] * 4, ["L", "L", "R", "R"], ["L_a", "L_b", "R_a", "R_b"])
    brain.regions.loc[1, ["x", "y", "z"]] = brain.regions.loc[0, ["x", "y", "z"]].to_numpy()
    with pytest.raises(ValueError, match=r"method 'anatomical'.*duplicate centroids.*L_a=L_b"):
        draw_nulls(brain, 4, method="anatomical")


def test_generate_nulls_draws_distinct_reproducible_anatomical_nulls(hcp_s100):
    spec = FAMILIES["anatomical"]
    assert not spec.cge_match_default and not spec.spin and not spec.calibrated
    a = generate_nulls(hcp_s100, n=40, top=10, method="anatomical", seed=3)
    b = generate_nulls(hcp_s100, n=40, top=10, method="anatomical", seed=3)
    ea = np.stack([a.null_expression(hcp_s100.X, k) for k in range(10)])
    np.testing.assert_array_equal(ea, np.stack([b.null_expression(hcp_s100.X, k) for k in range(10)]))
    assert len({e.tobytes() for e in ea}) == 10
    assert a.metadata["method"] == "anatomical"
