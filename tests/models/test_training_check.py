"""The training recipe (output layer started at the target mean, gradient clipping) and the
not-trained diagnosis that flags a fit which stayed a near-constant predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.device import seeded_torch
from spatiomol.models.diagnosis import NotTrainedWarning, training_diagnosis
from spatiomol.models.mlp import PairMLPNetwork
from spatiomol.models.registry import make_model
from spatiomol.models.training import (
    TrainingSettings,
    start_at_target_mean,
    train_epoch,
)

torch.set_num_threads(1)

#: small, fast configurations of both neural models
SMALL = {
    "mlp": dict(hidden_dims=[16, 8], batch_size=64, epochs=4, patience=2, device="cpu"),
    "smt": dict(
        d_model=8,
        nhead=2,
        num_layers=1,
        token_encoder_dim=4,
        encoder_output_dim=2,
        deep_hidden_dims=[16, 8],
        batch_size=64,
        epochs=4,
        patience=2,
        gene_order="as_given",
        aug_prob=0.0,
        # without dropout: this small LayerNorm decoder with dropout on raw expression is the
        # stuck mode of docs/models_neural.md ("Training recipe")
        dropout_rate=0.0,
        transformer_dropout=0.0,
        device="cpu",
    ),
}


@pytest.mark.parametrize(
    "train, val, loss_flagged",
    [
        ([1.0, 0.97, 0.96], [], True),  # never below 0.95 x the first epoch's
        ([1.0, 0.97, 0.949], [], False),
        ([1.0, 0.5], [1.0, 1.2], False),  # overfitting: training fell, validation did not
        ([1.0, 0.99], [1.0, 0.9], False),  # validation fell
        ([1.0, 0.99], [2.0, 1.95], True),  # neither fell
        ([1.0], [1.0], False),  # one epoch: no trend to judge
    ],
)
def test_loss_check_on_hand_worked_histories(train, val, loss_flagged):
    reasons = training_diagnosis(train, val, prediction_sd=1.0, target_sd=1.0)
    assert bool(reasons) == loss_flagged
    if loss_flagged:
        assert "never fell below 0.95" in reasons[0]


def test_sd_check_is_ten_percent_of_the_targets_sd():
    trained = ([1.0, 0.1], [])
    assert training_diagnosis(*trained, prediction_sd=0.0101, target_sd=0.1) == []
    (reason,) = training_diagnosis(*trained, prediction_sd=0.0099, target_sd=0.1)
    assert "prediction SD" in reason and "0.1" in reason
    assert training_diagnosis(*trained, prediction_sd=0.0, target_sd=0.0) == []  # constant targets: nothing to learn


@pytest.mark.parametrize("name", list(SMALL))
def test_the_target_mean_start_is_the_constant_predictor_at_the_mean(name):
    brain = make_synthetic_brain(30, 8, seed=0)
    model = make_model(name, **SMALL[name])
    with seeded_torch(0, torch.device("cpu")):
        network = model._build_network(brain.n_genes)
    start_at_target_mean(network, 0.37)
    network.eval()
    i, j = brain.pairs()
    with torch.no_grad():
        out = network(model._region_tensors(brain), torch.as_tensor(i), torch.as_tensor(j)).numpy()
    np.testing.assert_allclose(out, 0.37, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", list(SMALL))
def test_a_deliberately_stuck_fit_is_flagged_and_warned(name):
    """A learning rate of 1e-12 leaves the network where it started, the constant predictor
    at the target mean: both checks fire, with a warning and a note."""
    brain = make_synthetic_brain(40, 8, rule="bilinear", seed=1)
    train, val = np.arange(30), np.arange(30, 40)
    with pytest.warns(NotTrainedWarning, match="did not train"):
        model = make_model(name, **SMALL[name], learning_rate=1e-12).fit(brain, train, val)
    reasons = model.history_.not_trained
    assert len(reasons) == 2 and "loss never fell" in reasons[0] and "prediction SD" in reasons[1]
    assert any(note.startswith("neural fit did not train") for note in model.notes_)


@pytest.mark.parametrize("name", list(SMALL))
def test_the_same_fit_at_a_working_rate_is_not_flagged(name, recwarn):
    brain = make_synthetic_brain(40, 8, rule="bilinear", seed=1)
    model = make_model(name, **{**SMALL[name], "epochs": 30}, learning_rate=3e-3).fit(brain, np.arange(40))
    assert model.history_.not_trained == []
    assert not [w for w in recwarn if issubclass(w.category, NotTrainedWarning)]


def test_gradient_clipping_matches_torchs_clip_then_the_step():
    """One training step with ``clip_grad_norm=c`` equals: loss, backward,
    ``torch.nn.utils.clip_grad_norm_(c)`` and the optimiser's step, written out here. Plain
    SGD, whose step is proportional to the gradient, so clipping changes it (AdamW's first
    step would not show a rescaled gradient)."""
    features = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    i, j = np.triu_indices(12, 1)
    y = 10.0 * np.sin(np.arange(len(i)))  # large targets: the gradient norm is far above c

    def trained(clip: float) -> PairMLPNetwork:
        with seeded_torch(0, torch.device("cpu")):
            network = PairMLPNetwork(3, [8], dropout=0.0, norm="layer")
        settings = TrainingSettings(
            learning_rate=1e-2, weight_decay=0.0, batch_size=len(i), epochs=1, patience=1, clip_grad_norm=clip
        )
        optimizer = torch.optim.SGD(network.parameters(), lr=1e-2)
        train_epoch(network, {"features": features}, (i, j, y), optimizer, settings, 0, np.random.default_rng(0))
        return network

    with seeded_torch(0, torch.device("cpu")):
        reference = PairMLPNetwork(3, [8], dropout=0.0, norm="layer")
    reference.train()
    prediction = reference({"features": features}, torch.as_tensor(i), torch.as_tensor(j))
    torch.nn.functional.mse_loss(prediction, torch.as_tensor(y, dtype=torch.float32)).backward()
    assert torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05) > 1.0  # clipping is active
    torch.optim.SGD(reference.parameters(), lr=1e-2).step()
    clipped, unclipped = trained(0.05), trained(0.0)
    for a, b in zip(clipped.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)
    assert not all(torch.allclose(a, c) for a, c in zip(clipped.parameters(), unclipped.parameters()))


@pytest.mark.parametrize("bad", [{"output_init": "zeros"}, {"clip_grad_norm": -1.0}])
def test_recipe_settings_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainingSettings(learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=1, patience=1, **bad)


@pytest.mark.parametrize("name", list(SMALL))
def test_expression_is_standardised_with_the_training_regions_statistics(name, tmp_path):
    """Centre and scale come from the training regions only, are applied at prediction, and
    survive save/load."""
    brain = make_synthetic_brain(40, 8, rule="bilinear", seed=2)
    train = np.arange(0, 40, 2)
    model = make_model(name, **SMALL[name], standardize_expression=True).fit(brain, train)
    genes = list(model.genes_)
    X = brain.select_genes(genes).X
    np.testing.assert_allclose(model.expression_center_, X[train].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.expression_scale_, X[train].std(axis=0), rtol=1e-12)
    i, j = brain.pairs()
    loaded = type(model).load(model.save(tmp_path / "model.pt"))
    np.testing.assert_array_equal(loaded.expression_center_, model.expression_center_)
    np.testing.assert_array_equal(loaded.predict(brain, i, j), model.predict(brain, i, j))
    raw = make_model(name, **SMALL[name]).fit(brain, train)  # the default: raw expression
    assert raw.expression_center_ is None and raw.expression_scale_ is None
