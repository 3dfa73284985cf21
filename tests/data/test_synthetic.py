"""Synthetic brains: the planted rule, distance decay, noise and subject stack are what the docs say."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from spatiomol.data.synthetic import make_synthetic_brain


def _edges(n):
    return np.triu_indices(n, 1)


def _bilinear_r2(z, target):
    """R² of the best symmetric bilinear form z_iᵀ M z_j (+ intercept) fitted to upper-triangle edges."""
    i, j = _edges(len(z))
    rank = z.shape[1]
    features = [np.ones(len(i))] + [z[i, a] * z[j, b] + z[i, b] * z[j, a] for a in range(rank) for b in range(a, rank)]
    F = np.column_stack(features)
    y = target[i, j]
    coef, *_ = np.linalg.lstsq(F, y, rcond=None)
    return 1.0 - np.var(y - F @ coef) / np.var(y)


def test_shapes_labels_and_hemispheres():
    brain = make_synthetic_brain(n_regions=40, n_genes=25, seed=1)
    assert brain.X.shape == (40, 25) and brain.Y.shape == (40, 40) and len(brain.genes) == 25
    assert brain.regions["hemisphere"].value_counts().to_dict() == {"L": 20, "R": 20}
    assert np.all(brain.coords[brain.hemisphere == "L", 0] < 0)
    assert np.all(brain.coords[brain.hemisphere == "R", 0] > 0)
    assert set(brain.structure) == {"cortex", "subcortex"}
    assert set(brain.network[brain.structure == "subcortex"]) == {"Subcortex"}
    assert np.all((brain.X > 0) & (brain.X < 1))
    assert np.array_equal(brain.Y, brain.Y.T) and np.all(np.diag(brain.Y) == 1.0)
    assert len(set(brain.labels)) == 40


def test_same_seed_same_brain_and_different_seed_different_brain():
    a, b = make_synthetic_brain(seed=9), make_synthetic_brain(seed=9)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.allclose(make_synthetic_brain(seed=10).Y, a.Y)


def test_planted_bilinear_rule_is_recovered_from_its_parameters():
    brain = make_synthetic_brain(n_regions=50, n_genes=60, rule="bilinear", decay_weight=0.3, seed=4)
    p = brain.provenance["synthetic"]
    np.testing.assert_allclose(p["x_mean"], brain.X.mean(axis=0))
    z = (brain.X - p["x_mean"]) @ p["E"]
    z /= z.std(axis=0, keepdims=True)
    np.testing.assert_allclose(z, p["z"], rtol=1e-12)
    i, j = _edges(50)
    R = (z @ z.T)[i, j]
    R = (R - R.mean()) / R.std() * p["signal_scale"]
    d = cdist(brain.coords, brain.coords)[i, j]
    decay = 0.3 * (p["sa_inf"] + (1 - p["sa_inf"]) * np.exp(-d / p["sa_lambda"]))
    np.testing.assert_allclose(p["Y_clean"][i, j], R + decay, atol=1e-12)
    no_decay = make_synthetic_brain(n_regions=50, n_genes=60, rule="bilinear", seed=4)
    assert _bilinear_r2(
        no_decay.provenance["synthetic"]["z"], no_decay.provenance["synthetic"]["Y_clean"]
    ) == pytest.approx(1.0, abs=1e-10)


def test_nonlinear_rule_is_not_a_bilinear_form_of_the_embedding():
    brain = make_synthetic_brain(n_regions=60, n_genes=120, rule="nonlinear", seed=0)
    p = brain.provenance["synthetic"]
    i, j = _edges(60)
    assert np.std(p["Y_clean"][i, j]) == pytest.approx(p["signal_scale"], rel=1e-12)
    assert _bilinear_r2(p["z"], p["Y_clean"]) < 0.3


def test_rule_none_leaves_pure_distance_decay():
    brain = make_synthetic_brain(n_regions=30, rule="none", decay_weight=0.5, sa_inf=0.2, sa_lambda=25.0, seed=2)
    i, j = _edges(30)
    d = np.linalg.norm(brain.coords[i] - brain.coords[j], axis=1)
    np.testing.assert_allclose(
        brain.provenance["synthetic"]["Y_clean"][i, j], 0.5 * (0.2 + 0.8 * np.exp(-d / 25.0)), rtol=1e-12
    )


def test_edge_noise_has_the_requested_sd():
    brain = make_synthetic_brain(n_regions=80, noise=0.05, seed=3)
    i, j = _edges(80)
    residual = (brain.Y - brain.provenance["synthetic"]["Y_clean"])[i, j]
    # 3160 independent edges: the sample SD is within 5% of 0.05 with overwhelming probability
    assert np.std(residual) == pytest.approx(0.05, rel=0.05)
    assert abs(residual.mean()) < 4 * 0.05 / np.sqrt(len(residual))


def test_subject_stack_averages_to_the_group_target():
    brain = make_synthetic_brain(n_regions=20, n_subjects=6, subject_noise=0.2, seed=5)
    assert brain.subjects.shape == (6, 20, 20)
    i, j = _edges(20)
    np.testing.assert_allclose(brain.subjects.mean(axis=0)[i, j], brain.Y[i, j], rtol=1e-12)
    assert all(np.array_equal(s, s.T) and np.all(np.diag(s) == 1.0) for s in brain.subjects)
    spread = (brain.subjects - brain.Y)[:, i, j]
    assert np.std(spread) == pytest.approx(0.2 * np.sqrt(5 / 6), rel=0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rule": "quadratic"}, "rule must be"),
        ({"n_regions": 7}, "even and at least 8"),
        ({"n_regions": 6}, "even and at least 8"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic_brain(**kwargs)
