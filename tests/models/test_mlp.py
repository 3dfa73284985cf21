"""Pairwise MLP: input layout, symmetry, variants, accuracy against the bilinear baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.mlp import MLP, PairMLPNetwork
from spatiomol.models.registry import make_model, search_space

torch.set_num_threads(1)

TINY = dict(hidden_dims=[16, 8], batch_size=32, epochs=2, device="cpu")


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(24, 12, rule="nonlinear", seed=7)


def test_region_features_are_expression_then_scaled_coordinates(brain):
    features = MLP(use_coords=True, coord_scale_mm=50.0)._region_tensors(brain)["features"].numpy()
    np.testing.assert_allclose(features[:, :12], brain.X, rtol=1e-6)
    np.testing.assert_allclose(features[:, 12:], brain.coords / 50.0, rtol=1e-6)
    coords_only = MLP(use_coords=True, use_expression=False)._region_tensors(brain)["features"].numpy()
    np.testing.assert_allclose(coords_only, brain.coords / 100.0, rtol=1e-6)


def test_network_averages_both_orders_by_hand():
    """With no hidden layer the MLP is linear: f(i,j) = a·f_i + b·f_j + c, symmetrised to (a+b)/2·(f_i+f_j) + c."""
    net = PairMLPNetwork(n_region_features=2, hidden_dims=[], dropout=0.0).eval()
    with torch.no_grad():
        net.body[0].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
        net.body[0].bias.fill_(0.5)
    feats = {"features": torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])}
    out = net(feats, torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])).detach().numpy()
    w = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    f = feats["features"].numpy()
    expected = [0.5 * (w[0] + w[1]) @ (f[a] + f[b]) + 0.5 for a, b in [(0, 1), (0, 2), (1, 2)]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_predictions_symmetric_and_deterministic(brain):
    train = np.arange(16)
    a = make_model("mlp-coords", **TINY, dropout_rate=0.3).fit(brain, train)
    b = make_model("mlp-coords", **TINY, dropout_rate=0.3).fit(brain, train)
    i, j = brain.pairs(np.arange(16, 24))
    pa = a.predict(brain, i, j)
    np.testing.assert_allclose(pa, a.predict(brain, j, i), atol=1e-6)
    np.testing.assert_array_equal(pa, b.predict(brain, i, j))
    assert a.n_parameters_ == (2 * 15 * 16 + 16) + 2 * 16 + (16 * 8 + 8) + 2 * 8 + (8 + 1)


def test_coordinates_only_variant_ignores_expression(brain):
    model = make_model("mlp-coords-only", **TINY).fit(brain, np.arange(16))
    assert model._reads_expression() is False
    i, j = brain.pairs(np.arange(16, 24))
    null = brain.permute_expression(np.random.default_rng(0).permutation(24))
    np.testing.assert_array_equal(model.predict(brain, i, j), model.predict(null, i, j))
    expression = make_model("mlp", **TINY).fit(brain, np.arange(16))
    assert not np.allclose(expression.predict(brain, i, j), expression.predict(null, i, j))


def test_save_load_round_trip(tmp_path, brain):
    model = make_model("mlp-coords", **TINY).fit(brain, np.arange(12), np.arange(12, 18))
    loaded = MLP.load(model.save(tmp_path / "mlp.pt"))
    i, j = brain.pairs()
    np.testing.assert_array_equal(model.predict(brain, i, j), loaded.predict(brain, i, j))
    assert loaded.use_coords and loaded.history_.val_loss == model.history_.val_loss


def test_defaults_come_from_the_signature_and_every_grid_value_is_valid():
    default, grid = search_space("mlp")
    assert default == {**MLP().get_params(), "use_coords": False}  # the registry's variant fixes use_coords
    for name, values in grid.items():
        for value in values:  # every grid value passes the declared constraints
            MLP(**{name: value})._validate_params()
    assert all(2 <= len(h) <= 4 for h in grid["hidden_dims"])


def test_bad_hyperparameters_raise(brain):
    with pytest.raises(ValueError, match="use_expression"):
        MLP(use_coords=False, use_expression=False, **TINY).fit(brain, np.arange(10))
    with pytest.raises(ValueError, match="hidden_dims"):
        MLP(**{**TINY, "hidden_dims": [8] * 5}).fit(brain, np.arange(10))
    with pytest.raises(ValueError, match="lr_schedule"):
        MLP(**TINY, lr_schedule="warm").fit(brain, np.arange(10))
