"""Moran spectral randomisation arithmetic: the surrogates equal x̄ + V diag(s) Vᵀ (x − x̄)
written out in full, for every sign pattern, and a plan's groups are randomised apart."""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.nulls.spectral import distance_weights, moran_eigenvectors, moran_surrogates, plan_moran


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(3)
    coords = rng.normal(scale=30.0, size=(40, 3))  # mm
    vectors, _ = moran_eigenvectors(distance_weights(coords))
    X = rng.normal(size=(40, 7)) + coords[:, :1] / 10.0
    return coords, vectors, X


def direct(X, vectors, s):
    """x̄ + V diag(s) Vᵀ (x − x̄), the full product (no use of the half-sign shortcut)."""
    mean = X.mean(axis=0)
    return mean + vectors @ (s[:, None] * (vectors.T @ (X - mean)))


def test_surrogates_equal_the_full_formula_for_every_sign_pattern(maps):
    _, vectors, X = maps
    k = vectors.shape[1]
    rng = np.random.default_rng(0)
    mostly_negative = np.where(rng.random(k) < 0.8, -1, 1)
    mostly_positive = -mostly_negative
    balanced = np.where(np.arange(k) % 2 == 0, -1, 1)
    signs = np.stack([mostly_negative, mostly_positive, balanced, np.ones(k), -np.ones(k)]).astype(np.int8)
    out = moran_surrogates(X, vectors, signs)
    assert out.shape == (5, 40, 7)
    for null, s in zip(out, signs):
        np.testing.assert_allclose(null, direct(X, vectors, s.astype(float)), rtol=0, atol=1e-12)
    # hand-worked ends: all +1 is the map itself, all −1 its reflection about the mean
    np.testing.assert_allclose(out[3], X, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[4], 2 * X.mean(axis=0) - X, rtol=0, atol=1e-12)
    # one map at a time gives the same numbers as the joint randomisation
    single = moran_surrogates(X[:, 2], vectors, signs)
    assert single.shape == (5, 40)
    np.testing.assert_allclose(single, out[:, :, 2], rtol=0, atol=1e-13)


def test_plan_rows_randomise_each_group_on_its_own(maps):
    coords, _, X = maps
    groups = [np.arange(0, 25), np.arange(25, 40)]
    plan = plan_moran(coords, groups, 6, np.random.default_rng(1))
    draws = np.array([5, 0, 3])
    rows = plan.rows(X, draws)
    assert rows.shape == (3, 40, 7)
    for group, vectors, signs, start in zip(plan.groups, plan.vectors, plan.signs, (0, 25)):
        for b, k in enumerate(draws):
            expected = direct(X[group], vectors, signs[k].astype(float))
            np.testing.assert_allclose(rows[b, start : start + group.size], expected, rtol=0, atol=1e-12)
    whole = plan_moran(coords, [np.arange(40)], 6, np.random.default_rng(1))
    np.testing.assert_array_equal(whole.rows(X, draws), moran_surrogates(X, whole.vectors[0], whole.signs[0][draws]))
