"""Null families behind one interface: Hungarian spins, Moran spectral randomisation,
variogram-matched surrogates, the subcortical Moran option, storage and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.nulls import (
    CGE_MATCH_DEFAULT,
    NULL_DEFAULTS,
    NULL_METHODS,
    SUBCORTEX_DEFAULT,
    NullSet,
    draw_nulls,
    generate_nulls,
    moran_eigenvectors,
    moran_surrogates,
    morans_i,
    score_nulls,
    select_nulls,
    spins,
)
from spatiomol.nulls.spectral import distance_weights
from spatiomol.nulls.variogram import VariogramModel


# ------------------------------------------------------------------ Hungarian spins
def test_hungarian_spins_identical_to_neuromaps_on_hcp_s100(hcp_s100, neuromaps_with_rotations):
    brain = hcp_s100
    plan = spins.plan_spins(brain, 60, np.random.default_rng(11), assignment="hungarian")
    cortex = np.concatenate([plan.groups.cortex_left, plan.groups.cortex_right])
    perms, total_cost = spins.spin_batch(plan, np.arange(60), brain.n_regions, n_jobs=2)
    reference, reference_cost = neuromaps_with_rotations(
        plan.sphere[cortex],
        (brain.hemisphere[cortex] == "R").astype(int),
        plan.rotations_left,
        plan.rotations_right,
        method="hungarian",
    )
    np.testing.assert_array_equal(perms[:, cortex], cortex[reference.T])
    np.testing.assert_allclose(total_cost, reference_cost.sum(axis=0), rtol=1e-13)
    # optimal: never a larger total distance than Váša's greedy assignment of the same rotations
    vasa = spins.plan_spins(brain, 60, np.random.default_rng(11), assignment="vasa")
    _, vasa_cost = spins.spin_batch(vasa, np.arange(60), brain.n_regions)
    assert np.all(total_cost <= vasa_cost + 1e-12) and np.any(total_cost < vasa_cost - 1e-6)


def test_hungarian_assignment_equals_brute_force_on_small_problems():
    from itertools import permutations

    rng = np.random.default_rng(0)
    for _ in range(20):
        points = rng.standard_normal((6, 3))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        left, _ = spins.random_rotations(1, rng)
        rotated = points @ left[0]
        source, cost = spins.hungarian_assignment(points, rotated, n_jobs=1)
        distance = np.linalg.norm(points[:, None] - rotated[None], axis=2)
        best = min(permutations(range(6)), key=lambda p: distance[np.arange(6), list(p)].sum())
        np.testing.assert_array_equal(source[0], best)
        np.testing.assert_allclose(cost[0], distance[np.arange(6), list(best)], rtol=1e-15)


def test_hungarian_family_through_generate_nulls(hcp_s100):
    nulls = generate_nulls(hcp_s100, n=40, top=5, seed=2, method="hungarian")
    assert nulls.metadata["cge_match"] is False and nulls.metadata["subcortex"] == SUBCORTEX_DEFAULT
    draws = draw_nulls(hcp_s100, 40, 2, "hungarian")
    np.testing.assert_array_equal(nulls.permutations, draws.permutations[:5])  # unselected: first draws
    np.testing.assert_array_equal(nulls.expression, draws.replaced_rows(hcp_s100.X, np.arange(5)))
    shuffled = generate_nulls(hcp_s100, n=40, top=5, seed=2, method="hungarian", subcortex="shuffle")
    assert shuffled.is_permutation
    matched = generate_nulls(hcp_s100, n=40, top=5, seed=2, method="hungarian", cge_match=True, min_moved=0.0)
    np.testing.assert_array_equal(matched.errors, np.sort(matched.all_errors)[:5])


# ---------------------------------------------------------------- Moran spectral
@pytest.fixture(scope="module")
def s100_weights(hcp_s100):
    return distance_weights(hcp_s100.coords)


def test_moran_nulls_keep_gene_covariance_and_every_genes_morans_i(hcp_s100, s100_weights):
    X = hcp_s100.X
    nulls = generate_nulls(hcp_s100, n=50, top=6, seed=0, method="moran")
    assert nulls.expression.shape == (6, hcp_s100.n_regions, hcp_s100.n_genes)
    centred = X - X.mean(axis=0)
    true_i = morans_i(X, s100_weights)
    for k in range(6):
        Xk = nulls.apply(hcp_s100, k).X
        assert not np.allclose(Xk, X)
        np.testing.assert_allclose(Xk.mean(axis=0), X.mean(axis=0), atol=1e-12)
        ck = Xk - Xk.mean(axis=0)
        np.testing.assert_allclose(ck.T @ ck, centred.T @ centred, atol=1e-9 * np.abs(centred.T @ centred).max())
        np.testing.assert_allclose(morans_i(Xk, s100_weights), true_i, atol=1e-10)
    # a plain permutation keeps the covariance but not Moran's I: the check has teeth
    shuffled = X[np.random.default_rng(0).permutation(hcp_s100.n_regions)]
    assert np.abs(morans_i(shuffled, s100_weights) - true_i).max() > 0.05


def test_moran_single_gene_equals_the_wagner_dray_correlation_formula(hcp_s100, s100_weights):
    """brainspace's MoranRandomization arithmetic, written out: x̄ + V (r_xv ∘ s) √(n−1) sd(x)."""
    vectors, values = moran_eigenvectors(s100_weights)
    assert vectors.shape == (114, 113) and np.all(np.diff(values) <= 0)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(113), atol=1e-12)
    np.testing.assert_allclose(vectors.sum(axis=0), 0, atol=1e-12)
    x = hcp_s100.X[:, 3]
    signs = np.random.RandomState(4).choice([-1.0, 1.0], size=(30, 113))
    r_xv = np.array([stats.pearsonr(x, v)[0] for v in vectors.T])
    expected = x.mean() + (vectors @ (r_xv[None] * signs).T).T * (np.sqrt(113) * x.std(ddof=1))
    np.testing.assert_allclose(moran_surrogates(x, vectors, signs), expected, atol=1e-10)


def test_moran_covers_subcortex_and_cerebellum_in_one_draw():
    brain = make_synthetic_brain(90, 40, smoothness_mm=30.0, subcortical_fraction=0.2, seed=3)
    structure = brain.structure.astype(str).copy()
    structure[np.flatnonzero(structure == "subcortex")[:6]] = "cerebellum"
    brain = brain.replace(regions=brain.regions.assign(structure=structure))
    nulls = generate_nulls(brain, n=20, top=3, seed=1, method="moran")
    assert np.array_equal(nulls.replaced_regions, np.arange(brain.n_regions))
    changed = ~np.isclose(nulls.apply(brain, 0).X, brain.X).all(axis=1)
    assert changed[structure == "cortex"].any() and changed[structure != "cortex"].all()


# ----------------------------------------------------------------- variogram
def test_variogram_estimator_equals_brainsmash_and_surrogates_fit_as_well(hcp_s100):
    from brainsmash.mapgen import Base

    x = hcp_s100.X[:, 0]
    base = Base(x, hcp_s100.distances, seed=0)
    model = VariogramModel.from_distances(hcp_s100.distances)
    target = base.compute_smooth_variogram(x)
    np.testing.assert_allclose(model.variogram(x), target, rtol=1e-10)
    theirs = np.array([base.compute_smooth_variogram(s) for s in base(n=40)])
    rng = np.random.default_rng(0)
    delta = model.best_delta(x, rng)
    ours, _ = model.surrogates(x, delta, rng.random((200, x.size)).argsort(axis=1), rng.standard_normal((200, x.size)))
    ours_v = np.array([base.compute_smooth_variogram(s) for s in ours])

    def relative_sse(v):
        return ((v - target) ** 2).sum(axis=1) / (target**2).sum()

    # brainsmash on this map: median relative SSE 0.42 (200 surrogates); ours 0.34
    assert np.median(relative_sse(ours_v)) <= 1.25 * np.median(relative_sse(theirs))
    mean_error = np.abs(ours_v.mean(axis=0) - target).mean()
    assert mean_error <= 1.25 * np.abs(theirs.mean(axis=0) - target).mean()
    np.testing.assert_allclose(ours.mean(axis=1), 0, atol=1e-12)  # de-meaned, as brainsmash


def test_variogram_nulls_keep_the_gene_covariance_of_the_kept_components(hcp_s100):
    from sklearn.decomposition import PCA

    X = hcp_s100.X
    nulls = generate_nulls(hcp_s100, n=30, top=4, seed=5, method="variogram", pca_variance=0.95)
    pca = PCA(n_components=nulls.metadata["family"]["pca_components"], svd_solver="full").fit(X)
    reconstructed = pca.inverse_transform(pca.transform(X))
    target = np.cov(reconstructed.T)
    for k in range(4):
        Xk = nulls.apply(hcp_s100, k).X
        np.testing.assert_allclose(np.cov(Xk.T), target, atol=1e-10 * np.abs(target).max())
        assert stats.pearsonr(Xk[:, 0], X[:, 0])[0] < 0.9  # a different map, same covariance
    assert nulls.metadata["pca_components"] == 16


# ------------------------------------------------------------------ subcortex
def test_spins_with_moran_subcortex_keep_the_cortical_spins_and_replace_subcortex(hcp_s100):
    brain = hcp_s100
    shuffle = draw_nulls(brain, 30, 7, "cge", subcortex="shuffle")
    moran = draw_nulls(brain, 30, 7, "cge", subcortex="moran")
    cortex = np.flatnonzero(brain.structure == "cortex")
    sub = np.flatnonzero(brain.structure != "cortex")
    np.testing.assert_array_equal(moran.permutations[:, cortex], shuffle.permutations[:, cortex])
    np.testing.assert_array_equal(moran.replaced, sub)
    np.testing.assert_array_equal(moran.permutations[:, sub], np.tile(sub, (30, 1)))
    nulls = generate_nulls(brain, n=30, top=3, seed=7, method="cge", subcortex="moran", min_moved=0.5)
    assert nulls.metadata["subcortex"] == "moran" and not nulls.is_permutation
    weights = distance_weights(brain.coords[sub])
    for k in range(3):
        Xk = nulls.apply(brain, k).X
        np.testing.assert_array_equal(Xk[cortex], brain.X[nulls.permutations[k, cortex]])
        np.testing.assert_allclose(morans_i(Xk[sub], weights), morans_i(brain.X[sub], weights), atol=1e-10)


def test_the_default_spins_replace_the_subcortex_by_moran_nulls(hcp_s100):
    """The default non-cortical null is Moran within each structure class, not the uniform shuffle."""
    assert SUBCORTEX_DEFAULT == "moran"
    nulls = generate_nulls(hcp_s100, n=40, top=3, seed=0, method="cge", min_moved=0.5)
    explicit = generate_nulls(hcp_s100, n=40, top=3, seed=0, method="cge", min_moved=0.5, subcortex="moran")
    np.testing.assert_array_equal(nulls.expression, explicit.expression)
    np.testing.assert_array_equal(nulls.replaced_regions, np.flatnonzero(hcp_s100.structure != "cortex"))


def test_scores_of_replaced_rows_equal_the_reference_path(hcp_s100):
    """Curves from the new rows' correlations only = np.corrcoef of the whole null brain, binned."""
    brain = hcp_s100
    draws = draw_nulls(brain, 12, 3, "cge", subcortex="moran")
    scores = score_nulls(brain, draws)
    i, j = np.triu_indices(brain.n_regions, 1)
    d = brain.distances[i, j]
    edges = np.arange(0, d.max() + 5, 5)
    X_nulls = draws.expression(brain.X, np.arange(12))
    for k in (0, 5, 11):
        means, _, _ = stats.binned_statistic(d, np.corrcoef(X_nulls[k])[i, j], "mean", bins=edges)
        np.testing.assert_allclose(scores.curves[k], means[~np.isnan(means)], atol=1e-12)
    pca = score_nulls(brain, draws, np.arange(4), features="pca")
    from spatiomol.nulls.cge import pca_scores

    projected_true = pca_scores(brain.X)
    assert pca.pca_components == projected_true.shape[1]


def test_cge_match_is_a_flag_of_every_family(hcp_s100):
    moran = generate_nulls(hcp_s100, n=60, top=4, seed=1, method="moran", cge_match=True)
    np.testing.assert_array_equal(moran.errors, np.sort(moran.all_errors)[:4])
    assert moran.metadata["n_scored"] == 60 and moran.metadata["constant_quantities"] == ["cost"]
    plain = generate_nulls(hcp_s100, n=60, top=4, seed=1, method="cge", cge_match=False)
    np.testing.assert_array_equal(plain.parameters["draw"], np.arange(4))
    draws = draw_nulls(hcp_s100, 60, 1, "cge")
    scores = score_nulls(hcp_s100, draws)
    keep = select_nulls(draws, scores, 4, cge_match=True, min_moved=NULL_DEFAULTS["min_moved"])
    cge_default = generate_nulls(hcp_s100, n=60, top=4, seed=1, method="cge")  # matched by default
    np.testing.assert_array_equal(cge_default.parameters["draw"], scores.draws[keep])
    # the default family (anatomical) is not matched: its first draws, as generate_nulls(cge_match=False)
    default = generate_nulls(hcp_s100, n=60, top=4, seed=1)
    assert NULL_DEFAULTS["method"] == "anatomical" and CGE_MATCH_DEFAULT["anatomical"] is False
    np.testing.assert_array_equal(default.parameters["draw"], np.arange(4))
    unmatched = generate_nulls(hcp_s100, n=60, top=4, seed=1, method="anatomical", cge_match=False)
    np.testing.assert_array_equal(default.expression, unmatched.expression)


# ------------------------------------------------------------------- storage
def test_expression_null_sets_round_trip_and_old_files_still_load(tmp_path, hcp_s100):
    nulls = generate_nulls(hcp_s100, n=20, top=3, seed=0, method="moran")
    loaded = NullSet.load(nulls.save(tmp_path / "moran.npz"))
    np.testing.assert_array_equal(loaded.expression, nulls.expression)
    np.testing.assert_array_equal(loaded.replaced_regions, nulls.replaced_regions)
    np.testing.assert_array_equal(loaded.apply(hcp_s100, 2).X, nulls.apply(hcp_s100, 2).X)
    assert "moran null 2 of 3" in loaded.apply(hcp_s100, 2).provenance["expression_null"]
    assert loaded.metadata == nulls.metadata and loaded.metadata["format_version"] == 2
    # a subset of the genes (a transfer source restricted to shared genes) takes those columns
    subset = hcp_s100.select_genes(list(hcp_s100.genes[::-7]))
    np.testing.assert_array_equal(loaded.apply(subset, 1).X, nulls.apply(hcp_s100, 1).select_genes(subset.genes).X)
    other = subset.replace(genes=("NOT_A_GENE", *subset.genes[1:]))
    with pytest.raises(ValueError, match="NOT_A_GENE.*same genes or a subset"):
        loaded.apply(other, 0)

    # a format-1 file (permutations only, written before the families existed)
    spins_set = generate_nulls(hcp_s100, n=20, top=3, seed=0, method="cge")
    path = spins_set.save(tmp_path / "v2.npz")
    with np.load(path) as archive:
        fields = {
            k: archive[k] for k in archive.files if k not in ("replaced_regions", "expression", "worst_expression")
        }
    metadata = json.loads(str(fields["metadata_json"]))
    metadata["format_version"] = 1
    fields["metadata_json"] = np.array(json.dumps(metadata))
    np.savez_compressed(tmp_path / "v1.npz", **fields)
    old = NullSet.load(tmp_path / "v1.npz")
    assert old.is_permutation and old.expression is None
    np.testing.assert_array_equal(old.apply(hcp_s100, 1).X, hcp_s100.X[spins_set.permutations[1]])
    metadata["format_version"] = 7
    fields["metadata_json"] = np.array(json.dumps(metadata))
    np.savez_compressed(tmp_path / "v7.npz", **fields)
    with pytest.raises(ValueError, match="v7.npz.*format_version.*7"):
        NullSet.load(tmp_path / "v7.npz")


# ----------------------------------------------------------------- bad input
def test_bad_input_names_the_method_the_regions_and_what_it_needs(hcp_s100):
    with pytest.raises(ValueError, match="method must be one of.*'hungarian'.*'moran'.*'variogram'"):
        generate_nulls(hcp_s100, n=10, top=2, method="spin")
    assert set(NULL_METHODS) == {"cge", "pca-cge", "random", "hungarian", "moran", "variogram", "anatomical"}

    regions = hcp_s100.regions.copy()
    left_cortex = np.flatnonzero((regions["structure"] == "cortex") & (regions["hemisphere"] == "L"))
    keep = np.setdiff1d(np.arange(hcp_s100.n_regions), left_cortex[1:])
    lonely = hcp_s100.subset_regions(keep)
    for method in ("cge", "hungarian"):
        with pytest.raises(
            ValueError, match=f"method '{method}'.*1 cortical region.*left.*{regions.label[left_cortex[0]]}"
        ):
            generate_nulls(lonely, n=10, top=2, method=method)
    generate_nulls(lonely, n=10, top=2, method="moran")  # no sphere needed
    generate_nulls(lonely, n=10, top=2, method="anatomical")  # the unpaired right regions: among themselves

    duplicated = regions.copy()
    duplicated.loc[5, ["x", "y", "z"]] = duplicated.loc[7, ["x", "y", "z"]].to_numpy()
    twins = hcp_s100.replace(regions=duplicated)
    label5, label7 = duplicated.label[5], duplicated.label[7]
    with pytest.raises(ValueError, match=f"method 'moran'.*duplicate centroids.*{label5}={label7}.*distinct"):
        generate_nulls(twins, n=10, top=2, method="moran")

    X = hcp_s100.X.copy()
    X[[3, 9]] = np.nan
    for method in NULL_METHODS:
        with pytest.raises(ValueError, match=f"method '{method}'.*hcp-s100.*rows \\[3, 9\\].*{regions.label[3]}.*NaN"):
            generate_nulls(hcp_s100.replace(X=X), n=10, top=2, method=method)


def test_cli_draws_any_family(tmp_path, hcp_s100):
    from spatiomol.cli.main import main

    out = tmp_path / "moran.npz"
    assert main(["nulls", "hcp-s100", "--method", "moran", "--n", "20", "--top", "2", "--out", str(out)]) == 0
    direct = generate_nulls(hcp_s100, n=20, top=2, method="moran")
    np.testing.assert_array_equal(NullSet.load(out).expression, direct.expression)
    out = tmp_path / "spins.npz"
    args = ["nulls", "hcp-s100", "--method", "cge", "--n", "30", "--top", "2", "--no-cge-match", "--subcortex", "moran"]
    args += ["--out", str(out)]
    assert main(args) == 0
    loaded = NullSet.load(out)
    assert loaded.metadata["cge_match"] is False and loaded.metadata["subcortex"] == "moran"
