"""Spatiomolecular Transformer: ALiBi, attention, per-region path, symmetry, accuracy, exports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.registry import make_model, search_space
from spatiomol.models.smt import SMT, SMTEncoder, SMTNetwork, tokenize
from spatiomol.models.transformer import ALiBiSelfAttention, alibi_bias, alibi_slopes

torch.set_num_threads(1)

TINY = dict(
    d_model=16,
    nhead=2,
    num_layers=2,
    token_encoder_dim=4,
    encoder_output_dim=3,
    deep_hidden_dims=[16, 8],
    gene_order="as_given",
    batch_size=64,
    device="cpu",
    aug_prob=0.0,
)


# ------------------------------------------------------------------ ALiBi
def test_alibi_slopes_are_press_et_al_geometric_sequences():
    np.testing.assert_allclose(alibi_slopes(4), [2**-2, 2**-4, 2**-6, 2**-8])
    np.testing.assert_allclose(alibi_slopes(8), [2.0**-k for k in range(1, 9)])
    np.testing.assert_allclose(alibi_slopes(2), [2**-4, 2**-8])
    # not a power of two: the 4-head slopes, then every other 8-head slope
    np.testing.assert_allclose(alibi_slopes(6), [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])


def test_alibi_bias_by_hand():
    slopes = torch.tensor([0.5, 0.25])
    bias = alibi_bias(3, slopes, with_cls=False)
    expected_head0 = -0.5 * np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    np.testing.assert_allclose(bias[0], expected_head0)
    np.testing.assert_allclose(bias[1], expected_head0 / 2)
    with_cls = alibi_bias(3, slopes, with_cls=True)
    assert with_cls.shape == (2, 4, 4)
    assert torch.all(with_cls[:, 0, :] == 0) and torch.all(with_cls[:, :, 0] == 0)  # [CLS] is global
    np.testing.assert_allclose(with_cls[:, 1:, 1:], bias)


def test_explicit_attention_reproduces_sdpa_and_a_numpy_reference():
    gen = torch.Generator().manual_seed(0)
    attention = ALiBiSelfAttention(d_model=12, n_heads=3, dropout=0.0).eval()
    x = torch.randn(5, 7, 12, generator=gen)
    bias = alibi_bias(7, alibi_slopes(3), with_cls=False)
    with torch.no_grad():
        np.testing.assert_allclose(attention(x, bias), attention.forward_explicit(x, bias), atol=1e-5)
        weights = attention.attention_weights(x, bias).numpy()
        q, k, _ = (t.numpy() for t in attention._split(x))
    logits = np.einsum("bhld,bhmd->bhlm", q, k) / math.sqrt(4) + bias.numpy()[None]
    reference = np.exp(logits - logits.max(-1, keepdims=True))
    reference /= reference.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, reference, atol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_alibi_penalises_distance():
    """With identical tokens (equal logits), attention decays geometrically with distance."""
    attention = ALiBiSelfAttention(d_model=8, n_heads=2, dropout=0.0).eval()
    x = torch.ones(1, 6, 8)
    slopes = alibi_slopes(2)
    with torch.no_grad():
        w = attention.attention_weights(x, alibi_bias(6, slopes, with_cls=False))[0]
    ratio = (w[:, 0, 1] / w[:, 0, 0]).numpy()
    np.testing.assert_allclose(ratio, np.exp(-slopes.numpy()), rtol=1e-5)


# --------------------------------------------------------------- tokens
def test_tokenize_pads_the_last_bin():
    X = np.arange(2 * 10, dtype=float).reshape(2, 10)
    tokens, n_padding = tokenize(X, 4)
    assert tokens.shape == (2, 3, 4) and n_padding == 2
    np.testing.assert_array_equal(tokens[1, 0], [10, 11, 12, 13])
    np.testing.assert_array_equal(tokens[1, 2], [18, 19, 0, 0])


def test_padding_is_recorded():
    brain = make_synthetic_brain(12, 10, seed=0)
    model = SMT(**TINY, epochs=1).fit(brain, np.arange(8))
    assert model.n_tokens_ == 3 and model.n_padding_genes_ == 2
    assert any("zero-padded by 2" in note for note in model.notes_)
    assert model.token_labels_[0] == "GENE0000..GENE0003" and model.token_labels_[2] == "GENE0008..GENE0009"


# ----------------------------------------------- per-region == per-pair
@pytest.mark.parametrize("use_cls", [False, True])
def test_per_region_path_equals_per_pair_path(use_cls):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)  # the weights: unseeded they made the gradient check flaky
    encoder = SMTEncoder(
        token_size=5,
        n_tokens=6,
        d_model=16,
        n_heads=4,
        n_layers=2,
        d_out=3,
        dropout=0.0,
        use_alibi=True,
        use_cls=use_cls,
    )
    network = SMTNetwork(encoder, [32, 16], dropout=0.0)
    tensors = {"tokens": torch.rand(20, 6, 5, generator=gen), "coords": torch.randn(20, 3, generator=gen)}
    i = torch.randint(0, 20, (50,), generator=gen)
    j = (i + torch.randint(1, 20, (50,), generator=gen)) % 20
    network.eval()
    with torch.no_grad():
        torch.testing.assert_close(network(tensors, i, j), network.forward_per_pair(tensors, i, j))
    # training mode (batch-norm batch statistics, dropout 0): same outputs and same gradients
    network.train()
    fast = network(tensors, i, j)
    grads_fast = torch.autograd.grad(fast.square().sum(), list(network.parameters()))
    slow = network.forward_per_pair(tensors, i, j)
    grads_slow = torch.autograd.grad(slow.square().sum(), list(network.parameters()))
    torch.testing.assert_close(fast, slow)
    # float32 rounding relative to the gradients' scale (biases before a BatchNorm have ~0 gradient)
    scale = max(float(b.abs().max()) for b in grads_slow)
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=1e-4)


def test_position_embedding_tells_tokens_apart_and_adds_only_a_table():
    """Without absolute positions, two interior tokens of identical content at equal distances
    from everything else get identical outputs (shared value projection, ALiBi by distance only);
    the learned table breaks that, and zeroing it gives back the plain encoder."""
    torch.manual_seed(0)
    kwargs = dict(token_size=3, n_tokens=5, d_model=8, n_heads=2, n_layers=2, d_out=2, dropout=0.0)
    plain = SMTEncoder(**kwargs, use_alibi=True, use_cls=False).eval()
    positional = SMTEncoder(**kwargs, use_alibi=True, use_cls=False, position_embedding=True).eval()
    assert sum(p.numel() for p in positional.parameters()) - sum(p.numel() for p in plain.parameters()) == 5 * 8
    missing = positional.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing == ["token_position"]
    # tokens 1 and 3 hold the same genes' values and are mirror images around token 2
    tokens = torch.tensor([[[0.1, 0.2, 0.3], [1.0, 0.0, 0.5], [0.7, 0.7, 0.7], [1.0, 0.0, 0.5], [0.1, 0.2, 0.3]]])
    with torch.no_grad():
        out_plain = plain(tokens).reshape(5, 2)
        out_positional = positional(tokens).reshape(5, 2)
        torch.testing.assert_close(out_plain[1], out_plain[3])
        assert not torch.allclose(out_positional[1], out_positional[3])
        positional.token_position.zero_()
        torch.testing.assert_close(positional(tokens), plain(tokens))


def test_compact_decoder_head_is_bit_identical_to_the_gathering_one():
    """`SMTNetwork.forward` skips `pair_head`'s second unique/gather (its indices already use
    every embedding row): outputs and gradients must equal the gathering route bit for bit,
    with dropout on (same seed, same masks)."""
    gen = torch.Generator().manual_seed(2)
    encoder = SMTEncoder(5, 6, d_model=16, n_heads=4, n_layers=2, d_out=3, dropout=0.1, use_alibi=True, use_cls=False)
    network = SMTNetwork(encoder, [32, 16], dropout=0.2).train()
    tensors = {"tokens": torch.rand(40, 6, 5, generator=gen)}
    i = torch.randint(0, 40, (64,), generator=gen)
    j = (i + torch.randint(1, 40, (64,), generator=gen)) % 40

    def gathering(tensors, i, j):  # the route before: decode_indexed → pair_head with its own unique
        regions, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
        z = network.encode_regions(tensors, regions, chunk_size=len(regions))
        return network.decode_indexed(z, inverse[: len(i)], inverse[len(i) :])

    results = []
    for forward in (network.forward, gathering):
        torch.manual_seed(7)
        out = forward(tensors, i, j)
        results.append((out, torch.autograd.grad(out.square().sum(), list(network.parameters()))))
    (fast, grads_fast), (old, grads_old) = results
    assert torch.equal(fast, old)
    assert all(torch.equal(a, b) for a, b in zip(grads_fast, grads_old))


# ------------------------------------------------------------ estimator
@pytest.fixture(scope="module")
def small_brain():
    return make_synthetic_brain(30, 18, rule="nonlinear", n_subjects=3, seed=4)


@pytest.fixture(scope="module")
def fitted_cls(small_brain):
    return (
        make_model("smt-cls", **TINY, epochs=2, aug_style="curriculum_swap_constant", transformer_dropout=0.1)
        .set_params(aug_prob=0.3)
        .fit(small_brain, np.arange(20))
    )


def test_predictions_symmetric(small_brain, fitted_cls):
    i, j = small_brain.pairs(np.arange(20, 30))
    np.testing.assert_allclose(fitted_cls.predict(small_brain, i, j), fitted_cls.predict(small_brain, j, i), atol=1e-6)


def test_same_seed_same_predictions(small_brain, fitted_cls):
    again = (
        make_model("smt-cls", **TINY, epochs=2, aug_style="curriculum_swap_constant", transformer_dropout=0.1)
        .set_params(aug_prob=0.3)
        .fit(small_brain, np.arange(20))
    )
    i, j = small_brain.pairs(np.arange(20, 30))
    np.testing.assert_array_equal(fitted_cls.predict(small_brain, i, j), again.predict(small_brain, i, j))
    other = make_model("smt-cls", **TINY, epochs=2, seed=1).fit(small_brain, np.arange(20))
    assert not np.allclose(fitted_cls.predict(small_brain, i, j), other.predict(small_brain, i, j))


def test_save_load_round_trip(tmp_path, small_brain, fitted_cls):
    path = fitted_cls.save(tmp_path / "smt.pt")
    loaded = SMT.load(path)
    i, j = small_brain.pairs()
    np.testing.assert_array_equal(fitted_cls.predict(small_brain, i, j), loaded.predict(small_brain, i, j))
    assert loaded.get_params() == {**fitted_cls.get_params(), "deep_hidden_dims": [16, 8]}
    assert loaded.genes_ == fitted_cls.genes_ and loaded.n_parameters_ == fitted_cls.n_parameters_
    with pytest.raises(ValueError, match="class"):
        make_model("mlp").load(path)


def test_parameter_count_by_hand(fitted_cls):
    d, _h, k, L, dout = 16, 2, 4, 5 + 1, 3  # 18 genes → 5 tokens, + [CLS]
    layer = (d * 3 * d + 3 * d) + (d * d + d) + 2 * 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    encoder = (k * d + d) + (3 * d + d) + 2 * layer + 2 * d + (d * dout + dout)
    p = L * dout
    decoder = (2 * p * 16 + 16) + 2 * 16 + (16 * 8 + 8) + 2 * 8 + (8 + 1)
    assert fitted_cls.n_parameters_ == encoder + decoder


def test_region_embeddings_and_attention_maps(small_brain, fitted_cls):
    z = fitted_cls.region_embeddings(small_brain)
    assert z.shape == (30, fitted_cls.embedding_dim_) == (30, 6 * 3)
    # embeddings are exactly what the decoder sees: decoding them reproduces predict()
    i, j = small_brain.pairs(np.arange(20, 30))
    with torch.no_grad():
        decoded = fitted_cls.network_.decode(
            torch.as_tensor(z[i], dtype=torch.float32), torch.as_tensor(z[j], dtype=torch.float32)
        ).numpy()
    np.testing.assert_allclose(decoded, fitted_cls.predict(small_brain, i, j), atol=1e-5)

    maps = fitted_cls.attention_maps(small_brain)
    assert maps["per_head"].shape == (2, 6, 6) and maps["global"].shape == (6, 6)
    assert maps["token_labels"][0] == "[CLS]"
    np.testing.assert_allclose(maps["global"].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(maps["global"], maps["per_head"].mean(0))
    networks = small_brain.network
    weighted = sum(m * np.sum(networks == g) for g, m in maps["groups"].items()) / len(networks)
    np.testing.assert_allclose(weighted, maps["global"], atol=1e-10)
    # the explicit final-layer attention agrees with the SDPA path the model runs
    encoder = fitted_cls.network_.encoder
    tensors = fitted_cls._device_tensors(small_brain)
    with torch.no_grad():
        x = encoder._input_sequence(tensors["tokens"][:4], tensors["coords"][:4])
        for layer in encoder.layers[:-1]:
            x = layer(x, encoder.attention_bias)
        last = encoder.layers[-1].attention
        normed = encoder.layers[-1].attention_norm(x)
        torch.testing.assert_close(
            last(normed, encoder.attention_bias), last.forward_explicit(normed, encoder.attention_bias)
        )


def test_gene_order_mean_expression_uses_training_regions():
    brain = make_synthetic_brain(20, 12, seed=5)
    train = np.arange(14)
    model = SMT(**{**TINY, "gene_order": "mean_expression"}, epochs=1).fit(brain, train)
    expected = [brain.genes[k] for k in np.argsort(-brain.X[train].mean(0), kind="stable")]
    assert list(model.genes_) == expected
    # prediction reorders any brain with the same genes identically
    shuffled = brain.select_genes(list(reversed(brain.genes)))
    i, j = brain.pairs(np.arange(14, 20))
    np.testing.assert_array_equal(model.predict(brain, i, j), model.predict(shuffled, i, j))


def test_bad_input_raises_clear_errors(small_brain):
    with pytest.raises(ValueError, match="gene_order"):
        SMT(**{**TINY, "gene_order": "alphabetical"}).fit(small_brain, np.arange(10))
    with pytest.raises(ValueError, match="encoder_output_dim"):
        SMT(**{**TINY, "encoder_output_dim": 0}).fit(small_brain, np.arange(10))
    X = small_brain.X.copy()
    X[3] = np.nan
    with pytest.raises(ValueError, match="expression matrix X has NaN"):
        SMT(**TINY).fit(small_brain.replace(X=X), np.arange(10))
    with pytest.raises(ValueError, match="not fitted"):
        SMT(**TINY).predict(small_brain, [0], [1])
    fitted = SMT(**TINY, epochs=1).fit(small_brain, np.arange(10))
    with pytest.raises(ValueError, match="genes"):
        fitted.predict(small_brain.select_genes(list(small_brain.genes[:10])), [0], [1])


def test_defaults_come_from_the_signature_and_grid_is_table_4():
    default, grid = search_space("smt")
    assert default == SMT().get_params()
    assert grid["token_encoder_dim"] == [20, 60, 180] and grid["encoder_output_dim"] == [5, 10]
    assert grid["deep_hidden_dims"] == [[256, 128], [512, 256, 128]] and grid["aug_prob"] == [0.0, 0.1, 0.3]
    assert "use_cls" not in grid  # fixed by the registry variant
    for name, values in grid.items():
        for value in values:
            SMT(**{name: value})._validate_params()
