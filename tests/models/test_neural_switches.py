"""Issue-11 switches of the neural models, each against a hand-worked case or an independent
reference: step budget, pair orders, refit LR replay, ALiBi slopes, automatic token size,
post-norm blocks, hidden-layer normalisation, thread count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spatiomol.data.brain import pairs_within
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.device import check_num_threads, seeded_torch
from spatiomol.models.mlp import PairMLPNetwork
from spatiomol.models.registry import make_model
from spatiomol.models.smt import SMTEncoder, resolve_token_size
from spatiomol.models.training import (
    TrainingHistory,
    TrainingSettings,
    steps_per_epoch,
    train_network,
    training_budget,
    training_samples,
)
from spatiomol.models.transformer import PostNormEncoderLayer, PreNormEncoderLayer, alibi_bias, alibi_slopes

torch.set_num_threads(1)

# refit_epochs "best": these tests check what the refit takes from an early-stopped fit
MLP_TINY = dict(hidden_dims=[8, 8], batch_size=16, device="cpu", learning_rate=1e-2, refit_epochs="best")
SMT_TINY = dict(
    d_model=8,
    nhead=2,
    num_layers=1,
    token_encoder_dim=3,
    encoder_output_dim=2,
    deep_hidden_dims=[8, 4],
    gene_order="as_given",
    batch_size=32,
    device="cpu",
    aug_prob=0.0,
)


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(24, 9, rule="nonlinear", seed=3)


# ------------------------------------------------------------- step budget
def test_steps_per_epoch_skips_a_one_sample_remainder():
    assert steps_per_epoch(1000, 64) == 16  # 15 full batches + 40 left over
    assert steps_per_epoch(961, 64) == 15  # the 1 left over cannot form a BatchNorm batch
    assert steps_per_epoch(962, 64) == 16
    assert steps_per_epoch(64, 64) == 1


def test_training_budget_by_hand():
    # hcp-s100 inner training set: 2,278 edges / 512 → 5 steps per epoch
    assert training_budget(90, 20, 5) == (90, 20)  # off
    assert training_budget(90, 20, 5, min_steps=1000) == (200, 44)  # ceil(1000/5); 20·200/90 = 44.4
    assert training_budget(90, 20, 5, min_steps=450) == (90, 20)  # already 450 steps
    assert training_budget(90, 20, 200, max_steps=9000) == (45, 10)  # 9000 // 200; 20·45/90
    assert training_budget(90, 20, 5000, max_steps=100) == (1, 1)  # at least one epoch and patience 1
    assert training_budget(90, 20, 5, min_steps=1000, max_steps=600) == (120, 27)  # the cap wins


def test_min_steps_raises_the_epoch_budget_of_a_fit(brain):
    # 16 regions → 120 edges; batch 16 → 8 steps per epoch; 3 epochs make 24 < 50 steps
    model = make_model("mlp", **MLP_TINY, epochs=3, patience=2, min_steps=50).fit(brain, np.arange(16))
    history = model.history_
    assert (history.steps_per_epoch, history.epoch_budget, history.epochs_run) == (8, 7, 7)
    assert history.steps == 56 and history.patience == 5  # round(2 · 7 / 3)
    assert any("step budget" in note for note in model.notes_)


def test_refit_params_switch_the_step_budget_off(brain):
    model = make_model("mlp", **MLP_TINY, epochs=4, patience=2, min_steps=60).fit(
        brain, np.arange(16), np.arange(16, 24)
    )
    params = model.refit_params()
    assert params == {"epochs": model.history_.best_epoch + 1, "min_steps": 0, "max_steps": 0}


def test_bad_step_budget_rejected():
    base = dict(learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=1, patience=1)
    with pytest.raises(ValueError, match="min_steps"):
        TrainingSettings(**base, min_steps=-1)
    with pytest.raises(ValueError, match="must not exceed"):
        TrainingSettings(**base, min_steps=10, max_steps=5)


# ------------------------------------------------------------- pair orders
def test_both_orders_are_separate_samples():
    i, j = pairs_within(np.array([2, 5, 7]))
    y = np.array([0.1, 0.2, 0.3])
    si, sj, sy = training_samples(i, j, y, "both")
    assert list(zip(si, sj, sy)) == [(2, 5, 0.1), (2, 7, 0.2), (5, 7, 0.3), (5, 2, 0.1), (7, 2, 0.2), (7, 5, 0.3)]
    assert all(a is b for a, b in zip(training_samples(i, j, y, "averaged"), (i, j, y)))
    with pytest.raises(ValueError, match="pair_orders"):
        training_samples(i, j, y, "ordered")


class _RecordingNetwork(PairMLPNetwork):
    """Records the ``symmetric`` flag and batch size of every training call."""

    def __init__(self) -> None:
        super().__init__(3, [4], dropout=0.0)
        self.calls: list[tuple[bool, int]] = []

    def forward(self, region_tensors, i, j, symmetric=True):
        if self.training:
            self.calls.append((symmetric, len(i)))
        return super().forward(region_tensors, i, j, symmetric)


@pytest.mark.parametrize(("pair_orders", "n_samples", "symmetric"), [("averaged", 45, True), ("both", 90, False)])
def test_pair_orders_sample_count_and_network_call(pair_orders, n_samples, symmetric):
    features = torch.from_numpy(np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32))
    i, j = pairs_within(np.arange(10))
    settings = TrainingSettings(
        learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=2, patience=1, pair_orders=pair_orders
    )
    net = _RecordingNetwork()
    with seeded_torch(0, torch.device("cpu")):
        history = train_network(net, {"features": features}, (i, j, np.zeros(len(i))), settings)
    assert history.steps_per_epoch == steps_per_epoch(n_samples, 8) and history.steps == 2 * history.steps_per_epoch
    assert sum(n for _, n in net.calls) == 2 * n_samples  # every sample once per epoch
    assert {s for s, _ in net.calls} == {symmetric}


def test_both_orders_model_still_predicts_symmetrically(brain):
    model = make_model("mlp-coords", **MLP_TINY, epochs=2, pair_orders="both").fit(brain, np.arange(16))
    i, j = brain.pairs(np.arange(16, 24))
    np.testing.assert_allclose(model.predict(brain, i, j), model.predict(brain, j, i), atol=1e-6)
    assert model.history_.steps_per_epoch == 15  # 240 samples / 16


# ------------------------------------------------------------ refit replay
def test_lr_drop_epochs_read_from_a_learning_rate_history():
    history = TrainingHistory(learning_rate=[1e-3, 1e-3, 5e-4, 5e-4, 1.25e-4, 1.25e-4])
    assert history.lr_drop_epochs() == [2, 4, 4]  # a quartering is two halvings
    assert history.lr_drop_epochs(through=3) == [2]
    assert TrainingHistory(learning_rate=[1e-3] * 4).lr_drop_epochs() == []


def test_replayed_schedule_without_validation_by_hand():
    features = torch.from_numpy(np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32))
    i, j = pairs_within(np.arange(8))
    settings = TrainingSettings(
        learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=6, patience=1, lr_drop_epochs=(2, 4, 4)
    )
    with seeded_torch(0, torch.device("cpu")):
        history = train_network(PairMLPNetwork(3, [4], 0.0), {"features": features}, (i, j, np.zeros(len(i))), settings)
    np.testing.assert_allclose(history.learning_rate, [1e-3, 1e-3, 5e-4, 5e-4, 1.25e-4, 1.25e-4])
    with pytest.raises(ValueError, match="lr_drop_epochs"):
        train_network(
            PairMLPNetwork(3, [4], 0.0),
            {"features": features},
            (i, j, np.zeros(len(i))),
            settings,
            val_pairs=(i, j, np.zeros(len(i))),
        )


def test_refit_replays_the_selection_runs_learning_rates(brain):
    # the paper's recipe (torch's output init, no clipping, raw expression): on this tiny
    # brain its validation loss plateaus early, so the schedule drops the rate to replay
    paper_recipe = dict(output_init="default", clip_grad_norm=0.0, standardize_expression=False)
    params = dict(MLP_TINY, **paper_recipe, epochs=30, patience=8, learning_rate=3e-2, refit_schedule="replay")
    selection = make_model("mlp", **params).fit(brain, np.arange(14), np.arange(14, 24))
    history = selection.history_
    refit_params = selection.refit_params()
    assert refit_params["lr_drop_epochs"], "the plateau schedule should have dropped the rate at least once"
    best = history.best_epoch
    assert refit_params == {"epochs": best + 1, "lr_drop_epochs": history.lr_drop_epochs(through=best)}
    refit = make_model("mlp", **{**params, **refit_params}).fit(brain, np.arange(24))
    np.testing.assert_allclose(refit.history_.learning_rate, history.learning_rate[: best + 1])
    constant = make_model("mlp", **{**params, "refit_schedule": "constant"}).fit(
        brain, np.arange(14), np.arange(14, 24)
    )
    assert "lr_drop_epochs" not in constant.refit_params()
    with pytest.raises(ValueError, match="refit_schedule"):
        make_model("mlp", **{**params, "refit_schedule": "sometimes"}).fit(brain, np.arange(14))


# ------------------------------------------------------------------- ALiBi
def test_authors_alibi_slopes_by_hand():
    np.testing.assert_array_equal(alibi_slopes(4, "authors"), [1, 1, 0.5, 0.5])
    np.testing.assert_array_equal(alibi_slopes(2, "authors"), [1, 0.5])
    np.testing.assert_array_equal(alibi_slopes(8, "authors"), [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(alibi_slopes(1, "authors"), [1])
    np.testing.assert_array_equal(alibi_slopes(3, "authors"), [1, 0.5, 0.25])  # 3 // 2 = 1 head per slope
    np.testing.assert_array_equal(alibi_slopes(4), alibi_slopes(4, "press"))
    with pytest.raises(ValueError, match="alibi_slopes"):
        alibi_slopes(4, "geometric")


def test_encoder_uses_the_chosen_slopes():
    encoder = SMTEncoder(3, 5, 8, 4, 1, 2, 0.0, use_alibi=True, use_cls=False, alibi_kind="authors")
    distance = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    np.testing.assert_allclose(encoder.attention_bias[0], -distance)
    np.testing.assert_allclose(encoder.attention_bias[3], -0.5 * distance)
    np.testing.assert_allclose(encoder.attention_bias, alibi_bias(5, alibi_slopes(4, "authors"), with_cls=False))


# --------------------------------------------------------------- token size
@pytest.mark.parametrize(
    ("n_genes", "k", "n_tokens"), [(810, 12, 68), (282, 4, 71), (7380, 60, 123), (130, 2, 65), (30, 1, 30)]
)
def test_auto_token_size_by_hand(n_genes, k, n_tokens):
    assert resolve_token_size("auto", n_genes) == k
    assert math.ceil(n_genes / k) == n_tokens


def test_auto_token_size_keeps_at_least_64_tokens():
    for n_genes in range(64, 9000, 7):
        k = resolve_token_size("auto", n_genes)
        assert 1 <= k <= 60 and math.ceil(n_genes / k) >= 64
    assert resolve_token_size(20, 810) == 20
    for bad in ("big", 0, 2.5, True):
        with pytest.raises(ValueError, match="token_encoder_dim"):
            resolve_token_size(bad, 810)


def test_smt_with_automatic_tokens_fits_and_reports_them():
    brain = make_synthetic_brain(16, 130, seed=2)
    model = make_model("smt", **{**SMT_TINY, "token_encoder_dim": "auto"}, epochs=1).fit(brain, np.arange(10))
    assert (model.token_size_, model.n_tokens_, model.n_padding_genes_) == (2, 65, 0)
    assert model.embedding_dim_ == 65 * 2
    assert any("token_encoder_dim='auto'" in note for note in model.notes_)


# ------------------------------------------------------------ encoder blocks
def _torch_reference(layer: PreNormEncoderLayer, norm_first: bool, activation: str) -> torch.nn.TransformerEncoderLayer:
    """torch's own encoder layer with our layer's weights (an independent implementation)."""
    d = layer.attention.qkv.in_features
    reference = torch.nn.TransformerEncoderLayer(
        d, layer.attention.n_heads, 4 * d, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    with torch.no_grad():
        reference.self_attn.in_proj_weight.copy_(layer.attention.qkv.weight)
        reference.self_attn.in_proj_bias.copy_(layer.attention.qkv.bias)
        reference.self_attn.out_proj.weight.copy_(layer.attention.out.weight)
        reference.self_attn.out_proj.bias.copy_(layer.attention.out.bias)
        for mine, theirs in ((layer.ffn[0], reference.linear1), (layer.ffn[2], reference.linear2)):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        for mine, theirs in ((layer.attention_norm, reference.norm1), (layer.ffn_norm, reference.norm2)):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return reference


@pytest.mark.parametrize(
    ("block", "norm_first", "activation"), [(PreNormEncoderLayer, True, "gelu"), (PostNormEncoderLayer, False, "relu")]
)
def test_encoder_blocks_match_torch_transformer_layers(block, norm_first, activation):
    torch.manual_seed(0)
    layer = block(16, 4, dropout=0.0).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for norm in (layer.attention_norm, layer.ffn_norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    x = torch.randn(3, 7, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x, None), _torch_reference(layer, norm_first, activation)(x), atol=1e-5, rtol=1e-4
        )


def test_post_norm_encoder_has_no_final_norm_and_explicit_attention_matches():
    encoder = SMTEncoder(3, 6, 16, 4, 2, 2, 0.0, use_alibi=True, use_cls=True, norm_first=False).eval()
    assert isinstance(encoder.final_norm, torch.nn.Identity)
    assert all(isinstance(layer, PostNormEncoderLayer) for layer in encoder.layers)
    tokens, coords = torch.rand(4, 6, 3), torch.randn(4, 3)
    with torch.no_grad():
        weights = encoder.final_layer_attention(tokens, coords)
        x = encoder._input_sequence(tokens, coords)
        x = encoder.layers[0](x, encoder.attention_bias)
        last = encoder.layers[1].attention
        torch.testing.assert_close(last(x, encoder.attention_bias), last.forward_explicit(x, encoder.attention_bias))
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 4, 7))


# ------------------------------------------------------- hidden normalisation
def test_layer_norm_hidden_block_is_the_closed_form_and_same_in_training_and_prediction():
    torch.manual_seed(0)
    network = PairMLPNetwork(4, [6, 5], dropout=0.0, norm="layer")
    norms = [m for m in network.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 and not any(isinstance(m, torch.nn.BatchNorm1d) for m in network.modules())
    features = torch.randn(7, 4)
    i, j = torch.tensor([0, 1, 2, 5]), torch.tensor([3, 4, 6, 6])
    with torch.no_grad():
        network.train()
        trained = network({"features": features}, i, j)
        network.eval()
        predicted = network({"features": features}, i, j)
        # by hand: every hidden row centred and scaled by its own mean and SD (eps 1e-5)
        h = torch.cat([features[i], features[j]], 1) @ network.body[0].weight.T + network.body[0].bias
        h = torch.relu((h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + 1e-5))
        h = h @ network.body[4].weight.T + network.body[4].bias
        h = torch.relu((h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + 1e-5))
        by_hand_ij = (h @ network.body[8].weight.T + network.body[8].bias).squeeze(-1)
    # no running statistics: training-mode and prediction-mode outputs agree (BatchNorm's do not)
    torch.testing.assert_close(trained, predicted)
    h_ji = network.forward_per_pair({"features": features}, j, i, symmetric=False)
    torch.testing.assert_close(predicted, 0.5 * (by_hand_ij + h_ji.detach()), atol=1e-5, rtol=1e-5)
    batch = PairMLPNetwork(4, [6, 5], dropout=0.0, norm="batch")
    with torch.no_grad():
        batch.train()
        in_training = batch({"features": features}, i, j)
        batch.eval()
        assert not torch.allclose(in_training, batch({"features": features}, i, j))


@pytest.mark.parametrize(("name", "tiny"), [("mlp", MLP_TINY), ("smt", SMT_TINY)])
def test_hidden_norm_reaches_the_network_and_bad_values_are_rejected(brain, name, tiny):
    model = make_model(name, **tiny, epochs=2, hidden_norm="layer").fit(brain, np.arange(12))
    kinds = {type(m) for m in model.network_.modules()}
    assert torch.nn.BatchNorm1d not in kinds and torch.nn.LayerNorm in kinds
    prediction = model.predict(brain, np.array([12, 13]), np.array([14, 15]))
    assert np.all(np.isfinite(prediction))
    with pytest.raises(ValueError, match="'hidden_norm' parameter of"):
        make_model(name, **tiny, epochs=1, hidden_norm="group").fit(brain, np.arange(12))


# ------------------------------------------------------------ stop metric
def test_pearson_stop_metric_keeps_the_epoch_of_the_highest_validation_r(brain):
    from scipy.stats import pearsonr

    train, val = np.arange(14), np.arange(14, 20)
    model = make_model("mlp", **MLP_TINY, epochs=12, patience=12, stop_metric="pearson").fit(brain, train, val)
    history = model.history_
    vi, vj = pairs_within(val)
    restored = pearsonr(model.predict(brain, vi, vj), brain.targets(vi, vj)).statistic
    assert len(history.val_criterion) == len(history.val_loss) == history.epochs_run == 12
    assert history.best_epoch == int(np.nanargmin(history.val_criterion))
    assert history.val_criterion[history.best_epoch] == pytest.approx(1 - restored, abs=1e-5)
    mse_model = make_model("mlp", **MLP_TINY, epochs=12, patience=12).fit(brain, train, val)
    assert mse_model.history_.val_criterion == mse_model.history_.val_loss
    with pytest.raises(ValueError, match="'stop_metric' parameter of"):
        make_model("mlp", **MLP_TINY, epochs=1, stop_metric="r2").fit(brain, train, val)


def test_without_early_stopping_validation_is_only_monitored(brain):
    train, val = np.arange(14), np.arange(14, 20)
    model = make_model("mlp", **MLP_TINY, epochs=6, patience=1, early_stopping=False).fit(brain, train, val)
    history = model.history_
    # patience 1 would stop a run whose loss ever rose; here every epoch runs, at one rate
    assert history.epochs_run == 6 and len(history.val_loss) == 6 and history.best_epoch is None
    assert history.learning_rate == [MLP_TINY["learning_rate"]] * 6
    assert model.refit_params() == {} and not model.refit_uses_selection_fit()
    # the last epoch's weights are kept: its recorded validation MSE is the model's
    vi, vj = pairs_within(val)
    last = np.mean((model.predict(brain, vi, vj) - brain.targets(vi, vj)) ** 2)
    assert history.val_loss[-1] == pytest.approx(last, rel=1e-5)
    assert make_model("mlp", **MLP_TINY).refit_uses_selection_fit()


def test_budget_refit_takes_nothing_from_the_early_stopped_fit(brain):
    train, val = np.arange(14), np.arange(14, 20)
    stopped = make_model("mlp", **{**MLP_TINY, "refit_epochs": "budget"}, epochs=30, patience=2).fit(brain, train, val)
    assert stopped.history_.best_epoch is not None  # early stopping still acted on the fit
    assert stopped.refit_params() == {} and not stopped.refit_uses_selection_fit()
    best = make_model("mlp", **MLP_TINY, epochs=30, patience=2).fit(brain, train, val)
    assert best.refit_params() == {"epochs": best.history_.best_epoch + 1}
    with pytest.raises(ValueError, match="'refit_epochs' parameter of"):
        make_model("mlp", **{**MLP_TINY, "refit_epochs": "half"}, epochs=1).fit(brain, train, val)


# ------------------------------------------------------------------ threads
def test_thread_count_is_set_during_fitting_and_restored(brain):
    before = torch.get_num_threads()
    seen = []
    with seeded_torch(0, torch.device("cpu"), num_threads=1):
        seen.append(torch.get_num_threads())
    assert seen == [1] and torch.get_num_threads() == before
    model = make_model("mlp", **MLP_TINY, epochs=1, num_threads=1).fit(brain, np.arange(12))
    assert torch.get_num_threads() == before and model.get_params()["num_threads"] == 1
    assert check_num_threads(None) is None
    for bad in (0, -1, 1.5, "two"):
        with pytest.raises(ValueError, match="num_threads"):
            check_num_threads(bad)
