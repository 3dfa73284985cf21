"""Structural connectivity as an input modality: region features from a whole SC matrix.

A brain may carry a structural connectome (``Brain.structural``: the bundled functional
datasets pair with their HCP group SC; a user dataset names it as ``structural:`` in its
YAML). It is an *input*, like expression: region features are derived from the whole
matrix, test regions included, exactly as a test region's expression is read at test
time. It is never the target: the functional connectome ``Y`` plays no part in them.

Features (`structural_features`):

- the Laplacian spectral embedding: `sklearn.manifold.spectral_embedding` of the
  affinity ``W = max(SC, 0)`` with the diagonal zeroed (the bundled SC is a log streamline
  density, 0 where no streamline was found; its few negative entries, densities below 1,
  are treated as no connection), normalised Laplacian, the trivial eigenvector dropped,
  ``n_components`` components, each standardised to mean 0 and SD 1 over the regions
  (sign fixed by scikit-learn's deterministic sign flip);
- optionally the raw SC row of each region (``W`` divided by its largest entry), so a model
  can see which regions a region is wired to.

The features are a property of the brain, not of a model: every model gets them with the
same eigensolver seed (0). The embedding is transductive: under the held-out protocols
(network, hemisphere, structure) the held-out system's wiring shapes the embedding the
training regions are described by, as its expression would in a PCA of all regions; a model
never sees the held-out system's FC. SC features are refused for cross-dataset transfer: an
embedding of another brain's SC has an unrelated basis.
"""

from __future__ import annotations

import numpy as np

from spatiomol.data.brain import Brain


def structural_affinity(sc: np.ndarray) -> np.ndarray:
    """``max(SC, 0)`` with a zero diagonal: the non-negative weights the embedding needs, (n, n)."""
    W = np.clip(np.asarray(sc, dtype=np.float64), 0.0, None)
    np.fill_diagonal(W, 0.0)
    return W


def structural_embedding(sc: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Laplacian spectral embedding of a structural connectome.

    Parameters
    ----------
    sc : (n_regions, n_regions) symmetric float array
        Structural connectivity (e.g. log streamline density); see `structural_affinity`.
    n_components : int
        Components kept after the trivial one, ``1 <= n_components < n_regions``.
    seed : int
        Seed of the eigensolver's start vector (`sklearn.manifold.spectral_embedding`).

    Returns
    -------
    (n_regions, n_components) float64 array, each column standardised over the regions.
    """
    from sklearn.manifold import spectral_embedding

    W = structural_affinity(sc)
    n = W.shape[0]
    if not 1 <= int(n_components) < n:
        raise ValueError(f"n_components must be between 1 and {n - 1} (regions − 1), got {n_components!r}")
    if not np.any(W > 0):
        raise ValueError("structural connectivity has no positive edge: no embedding can be computed")
    embedding = spectral_embedding(
        W, n_components=int(n_components), norm_laplacian=True, drop_first=True, random_state=int(seed)
    )
    sd = embedding.std(axis=0)
    return (embedding - embedding.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def structural_features(brain: Brain, n_components: int, raw_row: bool = False, seed: int = 0) -> np.ndarray:
    """Region features of ``brain``'s structural connectome (see the module docstring).

    Returns
    -------
    (n_regions, n_components [+ n_regions]) float64 array: the embedding, then (with
    ``raw_row``) each region's SC row scaled by the largest entry.

    Raises
    ------
    ValueError
        When the brain has no structural connectivity (naming the brain and how to add it),
        a region has no positive connection, or ``n_components`` does not fit.
    """
    if brain.structural is None:
        raise ValueError(
            f"Brain {brain.name!r} has no structural connectivity: a model reading SC needs it (bundled "
            "functional datasets carry it; a user dataset names it in its YAML as 'structural: sc.csv')"
        )
    isolated = np.flatnonzero(structural_affinity(brain.structural).sum(axis=1) == 0)
    if isolated.size:
        raise ValueError(
            f"Brain {brain.name!r}: field 'structural' has regions without any positive connection "
            f"{brain.labels[isolated][:5].tolist()} ({isolated.size} in all); the Laplacian embedding needs a "
            "connected graph"
        )
    try:
        parts = [structural_embedding(brain.structural, n_components, seed=seed)]
    except ValueError as err:
        raise ValueError(f"Brain {brain.name!r}, field 'structural' (structural_components): {err}") from None
    if raw_row:
        W = structural_affinity(brain.structural)
        parts.append(W / W.max())
    return np.hstack(parts)


def n_structural_features(n_regions: int, n_components: int, raw_row: bool) -> int:
    """Number of columns `structural_features` returns."""
    return int(n_components) + (int(n_regions) if raw_row else 0)
