"""`explain` works for any neural model that exposes the hooks of `spatiomol.models.neural`,
not only the MLP and the SMT: a minimal third model, defined here, is trained on the planted
rule of test_explain.py and explained."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.explain import gene_attributions, rank_genes
from spatiomol.explain.embeddings import region_embeddings
from spatiomol.models.neural import Hyperparameter, NeuralConnectivityModel

PLANTED = ("GENE0002", "GENE0009")


def planted_product_brain():
    """36 regions, 16 uniform genes; Y_ij = 0.1 · Σ_{g planted} z_ig z_jg (z: standardised X)."""
    brain = make_synthetic_brain(n_regions=36, n_genes=16, rule="none", noise=0.0, seed=5)
    X = np.random.default_rng(1).uniform(size=brain.X.shape)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    planted = z[:, [brain.genes.index(g) for g in PLANTED]]
    Y = 0.1 * planted @ planted.T
    np.fill_diagonal(Y, 1.0)
    return brain.replace(X=X, Y=Y, name="planted-product")


class _ProductNetwork(nn.Module):
    """``head(e(x_i) ⊙ e(x_j))``: symmetric by construction."""

    def __init__(self, n_genes: int, width: int) -> None:
        super().__init__()
        self.encode = nn.Linear(n_genes, width)
        self.head = nn.Linear(width, 1)

    def embed(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(tensors["expression"])

    def forward(self, tensors, i, j, symmetric: bool = True) -> torch.Tensor:
        z = self.embed(tensors)
        return self.head(z[i] * z[j]).squeeze(-1)

    def output_layer(self) -> nn.Linear:
        return self.head


class ProductModel(NeuralConnectivityModel):
    """A third neural model: nothing but the hooks."""

    own_parameters = {"width": Hyperparameter(6, (Interval(Integral, 1, None, closed="left"),))}

    def _build_network(self, n_genes: int) -> nn.Module:
        return _ProductNetwork(n_genes, int(self.width))

    def _region_tensors(self, brain):
        return {"expression": torch.from_numpy(brain.X.astype(np.float32))}

    def region_embeddings(self, brain) -> np.ndarray:
        with torch.no_grad():
            return self.network_.embed(self._network_inputs(self._align_genes(brain))).double().numpy()

    def attribution_inputs(self):
        return "expression", ()


def test_a_third_neural_model_is_trained_and_explained():
    brain = planted_product_brain()
    model = ProductModel(
        epochs=60, learning_rate=1e-2, batch_size=128, dropout_rate=0.0, standardize_expression=True, device="cpu"
    ).fit(brain, np.arange(brain.n_regions))
    assert model.history_.not_trained == []
    # its own hyperparameter and the shared training ones, each declared once
    assert sorted(model.get_params()) == sorted(ProductModel._parameter_constraints) and model.width == 6
    i, j = brain.pairs()
    attributions = gene_attributions(model, brain, i, j, n_steps=32)
    assert set(rank_genes(attributions)["gene"][:2]) == set(PLANTED)
    # completeness: attributions sum to f(x) - f(baseline), up to the quadrature error
    span = np.abs(attributions.prediction - attributions.baseline_prediction).max()
    assert np.abs(attributions.delta).max() < 0.02 * span
    embedding = region_embeddings(model, brain)
    assert embedding.shape == (brain.n_regions, 6)
