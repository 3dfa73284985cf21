"""Region embeddings of the neural models and their 2-D PCA map.

- SMT: the encoder output ``z_i`` (`spatiomol.models.smt.SMT.region_embeddings`), the
  vector the decoder pairs (``L · encoder_output_dim`` values).
- MLP: the region's input to the first hidden layer, ``[W_a f_i ‖ W_b f_i]``
  (`spatiomol.models.mlp.MLP.region_embeddings`).
- any other neural model: its ``region_embeddings`` hook (`spatiomol.models.neural`).
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from spatiomol.data.brain import Brain  # noqa: E402
from spatiomol.models.neural import NeuralConnectivityModel  # noqa: E402


def region_embeddings(model: NeuralConnectivityModel, brain: Brain) -> np.ndarray:
    """(n_regions, p) embedding of every region of ``brain`` (see module docstring): the
    model's ``region_embeddings`` hook, which any neural model may define."""
    if not isinstance(model, NeuralConnectivityModel):
        raise ValueError(f"region embeddings: expected a neural model, got {type(model).__name__}")
    try:
        return model.region_embeddings(brain)
    except NotImplementedError as err:
        raise ValueError(f"region embeddings: {err}") from None


def pca_map(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of the embeddings (sklearn PCA, full SVD).

    Returns
    -------
    scores : (n, 2) array
    explained : (2,) explained variance ratio
    """
    n_components = min(2, *embeddings.shape)
    pca = PCA(n_components=n_components, svd_solver="full").fit(embeddings)
    scores = pca.transform(embeddings)
    if n_components < 2:
        scores = np.column_stack([scores, np.zeros(len(scores))])
    explained = np.zeros(2)
    explained[:n_components] = pca.explained_variance_ratio_
    return scores, explained


def draw_embedding_map(scores: np.ndarray, networks: np.ndarray, explained: np.ndarray, title: str) -> plt.Figure:
    """Regions on the first two principal components of their embeddings, coloured by network."""
    fig, ax = plt.subplots(figsize=(7.5, 6), constrained_layout=True)
    names = list(dict.fromkeys(networks))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for k, name in enumerate(names):
        mask = networks == name
        ax.scatter(scores[mask, 0], scores[mask, 1], s=22, color=colours(k % colours.N), label=str(name))
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    ax.legend(fontsize=8, title="network", loc="best")
    ax.set_title(textwrap.fill(title, 80), fontsize=10)
    return fig
