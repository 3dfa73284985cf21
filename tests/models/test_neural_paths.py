"""Fast paths of the neural models equal their per-pair references (outputs and gradients).

The MLP's first layer and the SMT decoder's first layer are linear in ``[f_i ‖ f_j]``, so
`pair_head` computes them once per distinct region and gathers per pair; the per-pair
path (`pair_head_per_pair`, `PairMLPNetwork.forward_per_pair`,
`SMTNetwork.forward_pairwise_decoder`) concatenates the pair rows and runs the whole
network on them.
"""

from __future__ import annotations

import pytest
import torch

from spatiomol.models.mlp import PairMLPNetwork, pair_head, pair_head_per_pair
from spatiomol.models.smt import SMTEncoder, SMTNetwork

torch.set_num_threads(1)


def _pairs(n_regions: int, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n_regions, (n_pairs,), generator=gen)
    j = (i + torch.randint(1, n_regions, (n_pairs,), generator=gen)) % n_regions
    return i, j


def _assert_same_outputs_and_gradients(module, fast, slow, atol=1e-5):
    module.train()  # batch statistics in BatchNorm; dropout is 0
    out_fast = fast()
    grads_fast = torch.autograd.grad(out_fast.square().sum(), list(module.parameters()))
    out_slow = slow()
    grads_slow = torch.autograd.grad(out_slow.square().sum(), list(module.parameters()))
    torch.testing.assert_close(out_fast, out_slow, atol=atol, rtol=1e-4)
    # float rounding differs between the paths; a bias followed by BatchNorm has an exactly
    # zero gradient, so its value is pure rounding: compare on the scale of all gradients
    scale = max(float(g.abs().max()) for g in grads_slow)
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=1e-4)
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(), slow(), atol=atol, rtol=1e-4)


@pytest.mark.parametrize("hidden_dims", [[], [32, 16]])
@pytest.mark.parametrize("symmetric", [True, False])
def test_mlp_per_region_first_layer_equals_per_pair_path(hidden_dims, symmetric):
    torch.manual_seed(0)
    network = PairMLPNetwork(n_region_features=7, hidden_dims=hidden_dims, dropout=0.0)
    tensors = {"features": torch.rand(30, 7)}
    i, j = _pairs(30, 200, seed=1)  # 200 pairs of 30 regions: regions repeat, as in real batches
    _assert_same_outputs_and_gradients(
        network,
        lambda: network(tensors, i, j, symmetric=symmetric),
        lambda: network.forward_per_pair(tensors, i, j, symmetric=symmetric),
    )


def test_pair_head_by_hand():
    """One linear layer: [1 2 | 3 4]·[f_i ‖ f_j] + 0.5, asymmetric then averaged over both orders."""
    body = torch.nn.Sequential(torch.nn.Linear(4, 1))
    with torch.no_grad():
        body[0].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
        body[0].bias.fill_(0.5)
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    i, j = torch.tensor([0, 2]), torch.tensor([1, 0])
    with torch.no_grad():
        ordered = pair_head(body, f, i, j, symmetric=False)
        averaged = pair_head(body, f, i, j)
    # (0, 1): 1 + 4 + 0.5; (2, 0): 2 + 4 + 3 + 0.5; reversed: (1, 0): 2 + 3 + 0.5, (0, 2): 1 + 6 + 8 + 0.5
    torch.testing.assert_close(ordered, torch.tensor([5.5, 9.5]))
    torch.testing.assert_close(averaged, torch.tensor([(5.5 + 5.5) / 2, (9.5 + 15.5) / 2]))
    torch.testing.assert_close(pair_head_per_pair(body, f[i], f[j]), averaged)


@pytest.mark.parametrize("use_cls", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
def test_smt_per_region_decoder_equals_pairwise_decoder_and_per_pair_path(use_cls, symmetric):
    torch.manual_seed(2)
    encoder = SMTEncoder(4, 5, 16, 2, 1, 3, dropout=0.0, use_alibi=True, use_cls=use_cls)
    network = SMTNetwork(encoder, [32, 16], dropout=0.0)
    tensors = {"tokens": torch.rand(25, 5, 4), "coords": torch.randn(25, 3)}
    i, j = _pairs(25, 120, seed=3)
    for reference in (network.forward_pairwise_decoder, network.forward_per_pair):
        _assert_same_outputs_and_gradients(
            network,
            lambda: network(tensors, i, j, symmetric=symmetric),
            lambda reference=reference: reference(tensors, i, j, symmetric=symmetric),
        )


def test_decode_indexed_equals_decode_on_gathered_embeddings():
    torch.manual_seed(4)
    network = SMTNetwork(SMTEncoder(4, 3, 8, 2, 1, 2, 0.0, True, False), [16, 8], dropout=0.0).eval()
    z = torch.randn(12, network.encoder.embedding_dim)
    i, j = _pairs(12, 40, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(network.decode_indexed(z, i, j), network.decode(z[i], z[j]))
