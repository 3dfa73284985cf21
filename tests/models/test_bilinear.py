"""Connectome Model (closed form) and low-rank bilinear model.

References: the Kronecker least-squares formulation of Kovács et al. solved directly on
tiny problems, the paper's printed closed form computed with explicit inverses, the
planted bilinear rule of `make_synthetic_brain`, and hand-counted parameters.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models import registry
from spatiomol.models.bilinear import BilinearClosedForm, ConnectomeModel
from spatiomol.models.lowrank import BilinearLowRank

BASELINES = [n for n in registry.MODELS if registry.spec(n).category in ("rules", "linear")]


# ----------------------------------------------------------------- tiny problems
def tiny_problem(n: int = 9, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centred features F (n, d) and a symmetric target Y (n, n)."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, d))
    F -= F.mean(axis=0)
    Y = rng.normal(size=(n, n))
    return F, 0.5 * (Y + Y.T)


def kronecker_ridge(
    F: np.ndarray, Y: np.ndarray, lam: float, unpenalized: list[int] = (), rows: np.ndarray | None = None
) -> np.ndarray:
    """argmin_O ‖vec(Y) − (F⊗F) vec(O)‖² + λ Σ_k w_k vec(O)_k², solved directly.

    ``unpenalized`` lists flat indices of vec(O) with w_k = 0; ``rows`` restricts the
    residual to some entries of vec(Y) (e.g. the off-diagonal ones).
    """
    d = F.shape[1]
    K = np.kron(F, F)  # row-major vec: vec(F O Fᵀ)[i*n + j] = (K @ O.ravel())[i*n + j]
    y = Y.ravel()
    if rows is not None:
        K, y = K[rows], y[rows]
    w = np.ones(d * d)
    w[list(unpenalized)] = 0.0
    return np.linalg.solve(K.T @ K + lam * np.diag(w), K.T @ y).reshape(d, d)


def test_closed_form_equals_kronecker_ridge():
    F, Y = tiny_problem()
    lam = 0.7
    solver = BilinearClosedForm(alpha=lam, alpha_scale="absolute", intercept=False).fit(F, Y)
    np.testing.assert_allclose(solver.interaction_matrix(), kronecker_ridge(F, Y, lam), atol=1e-6)
    assert solver.lambda_ == lam


def test_closed_form_with_intercept_equals_kronecker_ridge_with_free_offset():
    F, Y = tiny_problem(n=10, d=3, seed=1)
    lam = 2.0
    solver = BilinearClosedForm(alpha=lam, alpha_scale="absolute", intercept=True).fit(F, Y)
    F_aug = np.column_stack([F, np.full(len(F), solver.intercept_value_)])
    d = F_aug.shape[1]
    expected = kronecker_ridge(F_aug, Y, lam, unpenalized=[d * d - 1])
    np.testing.assert_allclose(solver.interaction_matrix(), expected, atol=1e-6)
    # the constant feature's singular value is the RMS singular value of F
    s = np.linalg.svd(F, compute_uv=False)
    assert np.isclose(solver.intercept_value_ * np.sqrt(len(F)), np.sqrt(np.mean(s**2)))


def test_em_diagonal_equals_kronecker_ridge_on_offdiagonal_entries():
    F, Y = tiny_problem(n=8, d=3, seed=2)
    lam = 0.3
    n = len(F)
    Y_start = Y.copy()
    np.fill_diagonal(Y_start, Y[~np.eye(n, dtype=bool)].mean())
    solver = BilinearClosedForm(
        alpha=lam, alpha_scale="absolute", intercept=False, diagonal="em", max_iter=5000, tol=1e-13
    ).fit(F, Y_start)
    offdiag = np.flatnonzero(~np.eye(n, dtype=bool).ravel())
    expected = kronecker_ridge(F, Y, lam, rows=offdiag)
    assert solver.n_iter_ < 5000
    np.testing.assert_allclose(solver.interaction_matrix(), expected, atol=1e-6)


def test_paper_penalty_equals_printed_formula_and_differs_from_ridge():
    F, Y = tiny_problem(n=7, d=3, seed=3)
    lam = 1.5
    solver = BilinearClosedForm(alpha=lam, alpha_scale="absolute", penalty="paper", intercept=False).fit(F, Y)
    A_inv = np.linalg.inv(F.T @ F + lam * np.eye(3))
    printed = A_inv @ F.T @ Y @ F @ A_inv
    np.testing.assert_allclose(solver.interaction_matrix(), printed, atol=1e-8)
    ridge = kronecker_ridge(F, Y, lam)
    assert np.abs(printed - ridge).max() > 1e-3  # the printed form is not the ridge minimiser


def test_closed_form_handles_more_features_than_regions():
    # g > n: the SVD path must agree with the Kronecker ridge without forming g x g inverses
    F, Y = tiny_problem(n=5, d=7, seed=4)
    solver = BilinearClosedForm(alpha=0.2, alpha_scale="absolute", intercept=False).fit(F, Y)
    np.testing.assert_allclose(solver.interaction_matrix(), kronecker_ridge(F, Y, 0.2), atol=1e-6)


# ------------------------------------------------------------- on synthetic brains
def test_connectome_model_matches_kronecker_on_a_brain():
    brain = make_synthetic_brain(10, 4, rule="bilinear", rank=2, seed=5)
    train = np.arange(8)
    model = ConnectomeModel(features="genes", alpha=0.05, alpha_scale="absolute").fit(brain, train)
    X = brain.X[train]
    F = (X - X.mean(axis=0)) / X.std(axis=0)  # training statistics, population SD
    Y = brain.Y[np.ix_(train, train)].copy()
    np.fill_diagonal(Y, Y[np.triu_indices(8, 1)].mean())
    F_aug = np.column_stack([F, np.full(8, model.solver_.intercept_value_)])
    expected = kronecker_ridge(F_aug, Y, 0.05, unpenalized=[5 * 5 - 1])
    np.testing.assert_allclose(model.interaction_matrix(), expected, atol=1e-6)
    # prediction is the bilinear form on standardized features of any region (test included)
    F_all = np.column_stack([(brain.X - X.mean(axis=0)) / X.std(axis=0), np.full(10, model.solver_.intercept_value_)])
    i, j = np.array([8, 0, 9]), np.array([9, 9, 3])
    np.testing.assert_allclose(
        model.predict(brain, i, j), np.einsum("ka,ab,kb->k", F_all[i], expected, F_all[j]), atol=1e-6
    )


def test_connectome_model_recovers_planted_bilinear_rule(bilinear_brain, bilinear_split):
    model = registry.make_model("cm", alpha=0.01).fit(bilinear_brain, bilinear_split.train)
    i, j = bilinear_split.test_pairs()
    r = np.corrcoef(model.predict(bilinear_brain, i, j), bilinear_brain.targets(i, j))[0, 1]
    assert r > 0.95
    assert model.n_parameters_ == (20 + 1) ** 2  # g x g interaction plus constant row/column


def test_cm_paper_variant_is_the_printed_formula_on_standardized_genes(bilinear_brain, bilinear_split):
    train = bilinear_split.train
    variant = registry.make_model("cm-paper").fit(bilinear_brain, train)
    direct = ConnectomeModel(features="genes", penalty="paper", alpha=variant.alpha).fit(bilinear_brain, train)
    i, j = bilinear_brain.pairs()
    np.testing.assert_array_equal(variant.predict(bilinear_brain, i, j), direct.predict(bilinear_brain, i, j))
    assert variant.get_params() == {**direct.get_params(), "alpha": registry.search_space("cm-paper")[0]["alpha"]}
    # App. A.4's O = (A + λI)⁻¹ FᵀYF (A + λI)⁻¹, A = FᵀF, with explicit inverses on
    # hand-standardized genes plus the (unpenalized) constant column
    X = bilinear_brain.X[train]
    n = len(train)
    F = np.column_stack([(X - X.mean(0)) / X.std(0), np.full(n, variant.solver_.intercept_value_)])
    Y = bilinear_brain.Y[np.ix_(train, train)].copy()
    np.fill_diagonal(Y, Y[np.triu_indices(n, 1)].mean())
    s2 = np.linalg.svd(F[:, :-1], compute_uv=False) ** 2
    lam = variant.alpha * s2.mean()  # relative scale of the paper's penalty: alpha · mean s²
    assert variant.lambda_ == pytest.approx(lam, rel=1e-12)
    A_inv = np.linalg.inv(F.T @ F + lam * np.diag([1.0] * (F.shape[1] - 1) + [0.0]))
    np.testing.assert_allclose(variant.interaction_matrix(), A_inv @ F.T @ Y @ F @ A_inv, atol=1e-8)
    cm = registry.make_model("cm", alpha=variant.alpha).fit(bilinear_brain, train)
    assert not np.allclose(cm.predict(bilinear_brain, i, j), variant.predict(bilinear_brain, i, j))


def test_cm_pca_with_every_component_equals_cm(bilinear_brain, bilinear_split):
    # PCA with all components is an orthogonal rotation of the standardized genes, and the
    # Frobenius ridge is rotation invariant
    cm = registry.make_model("cm", alpha=0.01).fit(bilinear_brain, bilinear_split.train)
    cm_pca = registry.make_model("cm-pca", n_components=20, alpha=0.01).fit(bilinear_brain, bilinear_split.train)
    i, j = bilinear_brain.pairs()
    np.testing.assert_allclose(cm_pca.predict(bilinear_brain, i, j), cm.predict(bilinear_brain, i, j), atol=1e-8)


def test_cm_pca_variance_fraction_and_parameter_count(bilinear_brain, bilinear_split):
    model = registry.make_model("cm-pca", n_components=0.99, alpha=0.01).fit(bilinear_brain, bilinear_split.train)
    X = bilinear_brain.X[bilinear_split.train]
    Z = (X - X.mean(0)) / X.std(0)
    explained = np.linalg.svd(Z, compute_uv=False) ** 2
    k = int(np.searchsorted(np.cumsum(explained) / explained.sum(), 0.99) + 1)
    assert model.feature_map_.n_features_ == k
    assert model.n_parameters_ == (k + 1) ** 2
    i, j = bilinear_brain.pairs(bilinear_split.test)
    assert np.corrcoef(model.predict(bilinear_brain, i, j), bilinear_brain.targets(i, j))[0, 1] > 0.95


def test_predictions_never_use_test_targets_and_are_symmetric(bilinear_brain, bilinear_split):
    rng = np.random.default_rng(0)
    Y = bilinear_brain.Y.copy()
    noise = rng.normal(size=Y.shape)
    Y[np.ix_(bilinear_split.test, np.arange(Y.shape[0]))] += noise[bilinear_split.test]
    Y[:, bilinear_split.test] = Y[bilinear_split.test].T  # keep symmetric, training block untouched
    altered = bilinear_brain.replace(Y=Y)
    i, j = bilinear_brain.pairs(bilinear_split.test)
    for name in ["cm", "cm-pca"]:
        a = registry.make_model(name).fit(bilinear_brain, bilinear_split.train).predict(bilinear_brain, i, j)
        b = registry.make_model(name).fit(altered, bilinear_split.train)
        np.testing.assert_array_equal(a, b.predict(altered, i, j))
        np.testing.assert_allclose(b.predict(altered, j, i), b.predict(altered, i, j), atol=1e-12)


def test_low_rank_recovers_planted_rule_and_is_seeded(bilinear_brain, bilinear_split):
    i, j = bilinear_brain.pairs(bilinear_split.test)
    fits = [BilinearLowRank(rank=3, epochs=600, seed=7).fit(bilinear_brain, bilinear_split.train) for _ in range(2)]
    pred = fits[0].predict(bilinear_brain, i, j)
    assert np.corrcoef(pred, bilinear_brain.targets(i, j))[0, 1] > 0.95
    np.testing.assert_array_equal(pred, fits[1].predict(bilinear_brain, i, j))
    np.testing.assert_allclose(fits[0].predict(bilinear_brain, j, i), pred, atol=1e-12)
    assert fits[0].n_parameters_ == 20 * 3 + 3 + 1
    assert fits[0].E_.shape == (20, 3)


def test_low_rank_early_stopping_keeps_best_validation_epoch(bilinear_brain, bilinear_split):
    train, val = bilinear_split.train[:45], bilinear_split.train[45:]
    model = BilinearLowRank(rank=3, epochs=400, patience=30, seed=0).fit(bilinear_brain, train, val)
    val_curve = np.array(model.history_["val"])
    assert model.best_epoch_ == int(np.argmin(val_curve))
    vi, vj = bilinear_brain.pairs(val)
    val_mse = np.mean((model.predict(bilinear_brain, vi, vj) - bilinear_brain.targets(vi, vj)) ** 2)
    assert np.isclose(val_mse, val_curve.min(), rtol=1e-4)


def test_missing_expression_is_a_clear_error(bilinear_brain, bilinear_split):
    X = bilinear_brain.X.copy()
    X[bilinear_split.test[0]] = np.nan
    broken = bilinear_brain.replace(X=X)
    model = registry.make_model("cm", alpha=0.01).fit(broken, bilinear_split.train)  # training rows are complete
    i, j = broken.pairs(bilinear_split.test)
    with pytest.raises(ValueError, match="field X"):
        model.predict(broken, i, j)
    with pytest.raises(ValueError, match="field X"):
        registry.make_model("cm", alpha=0.01).fit(broken, np.append(bilinear_split.train, bilinear_split.test[0]))
    with pytest.raises(ValueError, match="The 'features' parameter of ConnectomeModel must be a str among"):
        ConnectomeModel(features="kmeans").fit(bilinear_brain, bilinear_split.train)


@pytest.mark.parametrize("name", BASELINES)
def test_parameters_are_keyword_only_and_the_grid_names_real_ones(name):
    cls = registry.model_class(name)
    signature = inspect.signature(cls.__init__).parameters
    assert all(p.kind is p.KEYWORD_ONLY for key, p in signature.items() if key != "self"), name
    default, grid = registry.search_space(name)
    for key, values in grid.items():
        assert key in signature and len(values) >= 2, (name, key)
    assert registry.make_model(name).get_params() == default
