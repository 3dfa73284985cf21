"""Gene attributions of the neural models: which genes move the predicted connectivity.

For an edge ``(i, j)`` a model predicts ``f(x_i, x_j)`` from the two regions' expression
(plus coordinates for the ``-coords`` / ``[CLS]`` variants). The attribution of gene
``g`` to that prediction is the sum of the attributions of ``x_ig`` and ``x_jg`` with
respect to a *baseline* region pair whose expression is the mean over all regions
(coordinates are kept, so only expression moves along the path):

- ``"integrated_gradients"`` (default; Sundararajan et al. 2017, via captum's
  `IntegratedGradients`): the path integral of the gradient from the baseline to the
  input; over all genes it sums to ``f(x) − f(baseline)`` (completeness), up to the
  quadrature error captum reports as the convergence delta.
- ``"gradient_x_input"``: ``∂f/∂x · (x − baseline)`` at the input, the first-order term of
  the same difference (one backward pass; exact for a model linear in expression).

`gene_attributions` returns the per-edge attributions (edges × genes, target units);
`rank_genes` summarises them over a set of edges as the mean |attribution| (how much a
gene moves those predictions, either way) and the mean signed attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from spatiomol.data.brain import Brain
from spatiomol.explain.defaults import METHODS, N_STEPS
from spatiomol.models.neural import NeuralConnectivityModel

#: samples (edges × integration steps) per forward pass, bounding memory
SAMPLES_PER_PASS = 4096


@dataclass
class EdgeAttributions:
    """Per-edge gene attributions of one model on one brain.

    Attributes
    ----------
    i, j : (e,) int arrays
        The edges (region indices, ``i < j``).
    genes : tuple of str, g
        Gene names, in the order of the columns of ``values``.
    values : (e, g) float64 array
        Attribution of each gene to each edge's prediction (target units).
    prediction, baseline_prediction : (e,) float64 arrays
        ``f(x)`` and ``f(baseline)``.
    delta : (e,) float64 array
        ``values.sum(1) − (prediction − baseline_prediction)``: the completeness error
        (integration error of integrated gradients; the non-linear remainder of
        gradient × input).
    method : str
    """

    i: np.ndarray
    j: np.ndarray
    genes: tuple[str, ...]
    values: np.ndarray
    prediction: np.ndarray
    baseline_prediction: np.ndarray
    delta: np.ndarray
    method: str


class _PairFunction:
    """A fitted network as a function of per-edge region inputs ``(a, b)`` (batch first).

    ``inputs(i, j)`` gives the tensors of the edges' two regions and their baselines;
    ``__call__(a, b, *extra)`` the predictions; ``genes_of(attr_a, attr_b)`` folds the
    attributions of both inputs into (e, g) per-gene attributions.
    """

    def __init__(self, model: NeuralConnectivityModel, brain: Brain) -> None:
        if not hasattr(model, "network_"):
            raise ValueError(f"{type(model).__name__} is not fitted; fit it (or load a saved run model) first")
        if not isinstance(model, NeuralConnectivityModel):
            raise ValueError(f"gene attributions: expected a neural model, got {type(model).__name__}")
        try:
            self.key, self.extra_keys = model.attribution_inputs()
        except NotImplementedError as err:
            raise ValueError(f"gene attributions: {err}") from None
        self.model = model
        # the fitted gene order (SMT: TSS order of its training regions)
        self.brain = model._align_genes(brain)
        self.n_genes = self.brain.n_genes
        self.network = model.network_.eval()
        self.device = model.device_
        tensors = model._device_tensors(self.brain)
        mean_brain = self.brain.replace(X=np.broadcast_to(self.brain.X.mean(axis=0), self.brain.X.shape).copy())
        baseline = model._device_tensors(mean_brain)
        self.region_inputs = tensors[self.key]
        self.region_baseline = baseline[self.key]
        self.region_extra = [tensors[k] for k in self.extra_keys]

    def inputs(self, i: np.ndarray, j: np.ndarray):
        ti = torch.as_tensor(i, device=self.device)
        tj = torch.as_tensor(j, device=self.device)
        inputs = (self.region_inputs[ti], self.region_inputs[tj])
        baselines = (self.region_baseline[ti], self.region_baseline[tj])
        extra = tuple(t[ti] for t in self.region_extra) + tuple(t[tj] for t in self.region_extra)
        return inputs, baselines, extra

    def __call__(self, a: torch.Tensor, b: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        tensors = {self.key: torch.cat([a, b])}
        if self.extra_keys:
            half = len(extra) // 2
            for k, key in enumerate(self.extra_keys):
                tensors[key] = torch.cat([extra[k], extra[half + k]])
        index = torch.arange(n, device=a.device)
        return self.network(tensors, index, index + n)

    def genes_of(self, attr_a: torch.Tensor, attr_b: torch.Tensor) -> np.ndarray:
        both = (attr_a + attr_b).detach().double().cpu().numpy()
        return both.reshape(both.shape[0], -1)[:, : self.n_genes]  # MLP: coords after genes; SMT: padding last


def gene_attributions(
    model: NeuralConnectivityModel,
    brain: Brain,
    i: np.ndarray,
    j: np.ndarray,
    *,
    method: str = "integrated_gradients",
    n_steps: int = N_STEPS,
) -> EdgeAttributions:
    """Attribution of every gene to the predictions of edges ``(i, j)`` (see module docstring).

    Parameters
    ----------
    model : a fitted neural model with the ``attribution_inputs`` hook (`spatiomol.models.neural`):
        the MLP (reading expression), the SMT, or any other
    brain : Brain
        Holds the model's genes (any order; aligned to the fitted order).
    i, j : (e,) int arrays
        Edges to explain.
    method : {"integrated_gradients", "gradient_x_input"}
    n_steps : int
        Integration steps (Gauss–Legendre) of integrated gradients.

    Returns
    -------
    EdgeAttributions, genes in the model's fitted order (``model.genes_``).
    """
    if method not in METHODS:
        raise ValueError(f"gene attributions: unknown method {method!r}; expected one of {METHODS}")
    fn = _PairFunction(model, brain)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    chunk = max(1, SAMPLES_PER_PASS // (n_steps if method == "integrated_gradients" else 1))
    values, prediction, base = [], [], []
    for s in range(0, len(i), chunk):
        inputs, baselines, extra = fn.inputs(i[s : s + chunk], j[s : s + chunk])
        with torch.no_grad():
            prediction.append(fn(*inputs, *extra).double().cpu().numpy())
            base.append(fn(*baselines, *extra).double().cpu().numpy())
        if method == "integrated_gradients":
            from captum.attr import IntegratedGradients

            attr = IntegratedGradients(fn).attribute(
                inputs, baselines=baselines, additional_forward_args=extra or None, n_steps=n_steps
            )
        else:
            a, b = (t.detach().clone().requires_grad_(True) for t in inputs)
            grads = torch.autograd.grad(fn(a, b, *extra).sum(), (a, b))
            attr = tuple(g * (x - x0) for g, x, x0 in zip(grads, inputs, baselines))
        values.append(fn.genes_of(*attr))
    values_arr = np.concatenate(values) if values else np.zeros((0, fn.n_genes))
    prediction_arr = np.concatenate(prediction) if prediction else np.zeros(0)
    base_arr = np.concatenate(base) if base else np.zeros(0)
    return EdgeAttributions(
        i=i,
        j=j,
        genes=tuple(model.genes_),
        values=values_arr,
        prediction=prediction_arr,
        baseline_prediction=base_arr,
        delta=values_arr.sum(axis=1) - (prediction_arr - base_arr),
        method=method,
    )


def rank_genes(attributions: EdgeAttributions, edges: np.ndarray | None = None) -> pd.DataFrame:
    """Genes ranked by mean |attribution| over ``edges`` (a boolean mask or indices; all when None).

    Returns
    -------
    DataFrame with columns ``rank`` (1 = moves the predictions most), ``gene``,
    ``mean_abs_attribution``, ``mean_attribution`` (target units) and ``n_edges``.
    """
    values = attributions.values if edges is None else attributions.values[edges]
    if values.shape[0] == 0:
        raise ValueError("rank_genes: no edges selected")
    table = pd.DataFrame(
        {
            "gene": list(attributions.genes),
            "mean_abs_attribution": np.abs(values).mean(axis=0),
            "mean_attribution": values.mean(axis=0),
            "n_edges": values.shape[0],
        }
    )
    table = table.sort_values(["mean_abs_attribution", "gene"], ascending=[False, True], kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def network_rankings(attributions: EdgeAttributions, networks: np.ndarray) -> dict[str, pd.DataFrame]:
    """`rank_genes` over all edges (key ``"all"``) and, per network N, over the edges with an end in N.

    Parameters
    ----------
    networks : (n_regions,) array of network names (``brain.network``).
    """
    out = {"all": rank_genes(attributions)}
    for name in dict.fromkeys(networks):
        mask = (networks[attributions.i] == name) | (networks[attributions.j] == name)
        if mask.any():
            out[str(name)] = rank_genes(attributions, mask)
    return out
