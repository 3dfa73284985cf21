"""Moran spectral randomisation (Wagner & Dray 2015): nulls that need no sphere.

A spatial weight matrix ``W`` over regions (here inverse centroid distance,
``w_ij = 1 / d_ij`` in mm⁻¹, zero diagonal) is doubly centred; its eigenvectors
``V`` (Moran eigenvector maps) form an orthonormal basis of the maps with zero mean, each
with its own Moran's I. A map ``x`` is written in that basis,
``x = x̄ + V c`` with ``c = Vᵀ(x − x̄)``, and a null flips the sign of each coefficient at
random: ``x* = x̄ + V (s ∘ c)``, ``s ∈ {−1, +1}``.

Because one sign vector ``s`` is drawn per null and **shared by all genes**, the null
expression is ``X* = 1 x̄ᵀ + M_s (X − 1 x̄ᵀ)`` with ``M_s = V diag(s) Vᵀ`` orthogonal, so

- each gene's mean and variance, and the gene–gene covariance ``(X − x̄)ᵀ(X − x̄)``, are
  kept exactly (``M_sᵀ M_s`` is the projector onto zero-mean maps);
- each gene's Moran's I is kept exactly (``M_s`` commutes with the centred ``W``).

``V`` holds all ``r − 1`` eigenvectors orthogonal to the constant map (brainspace's
``spectrum="all"``), so nothing of ``x`` is dropped. For one gene the output equals
``brainspace.null_models.moran_randomization(x, V, procedure="singleton")`` for the same
eigenvectors and signs (checked in ``benchmarks/nulls_families.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def distance_weights(coords: np.ndarray, labels: np.ndarray | None = None, *, what: str = "moran") -> np.ndarray:
    """Inverse-distance spatial weights between region centroids.

    Parameters
    ----------
    coords : (r, 3) float array, mm
    labels : (r,) array of str, optional
        Region names for the error message.
    what : str
        The method named in error messages.

    Returns
    -------
    (r, r) float array, ``1 / d_ij`` (mm⁻¹) off the diagonal, 0 on it.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"{what}: coordinates must have shape (regions, 3), got {coords.shape}")
    distances = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distances, np.inf)
    i, j = np.nonzero(distances == 0)
    if i.size:
        names = labels if labels is not None else np.arange(coords.shape[0])
        pairs = [f"{names[a]}={names[b]}" for a, b in zip(i, j) if a < b][:10]
        raise ValueError(
            f"{what}: regions with duplicate centroids ({', '.join(pairs)}); the spectral null needs "
            "distinct centroids (inverse-distance weights are infinite at distance 0)"
        )
    if not np.isfinite(coords).all():
        raise ValueError(f"{what}: coordinates contain NaN/inf; the spectral null needs finite centroids (mm)")
    return 1.0 / distances


def moran_eigenvectors(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moran eigenvector maps of a symmetric weight matrix.

    Parameters
    ----------
    weights : (r, r) float array
        Symmetric spatial weights (symmetrised as ``(W + Wᵀ)/2`` otherwise).

    Returns
    -------
    vectors : (r, r − 1) float array
        Orthonormal eigenvectors of the doubly centred ``W``, every one orthogonal to the
        constant map, by descending eigenvalue.
    eigenvalues : (r − 1,) float array
    """
    w = np.asarray(weights, dtype=np.float64)
    w = (w + w.T) / 2.0
    r = w.shape[0]
    if r < 2:
        raise ValueError(f"Moran eigenvectors need at least 2 regions, got {r}")
    row = w.mean(axis=0, keepdims=True)
    centred = w - row - row.T + w.mean()
    values, vectors = np.linalg.eigh(centred)
    # the constant map is an eigenvector (eigenvalue 0) of the doubly centred matrix: drop it
    constant = int(np.argmax(np.abs(vectors.sum(axis=0))))
    keep = np.delete(np.arange(r), constant)[::-1]
    vectors = vectors[:, keep]
    # re-orthogonalise exactly against the constant (eigh may mix it into a near-degenerate pair)
    vectors -= vectors.mean(axis=0, keepdims=True)
    q, _ = np.linalg.qr(vectors)
    signs = np.sign(np.sum(q * vectors, axis=0))
    return q * np.where(signs == 0, 1.0, signs), values[keep]


def morans_i(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Moran's I of each column of ``x``: ``(r / Σw) · zᵀWz / zᵀz`` with ``z = x − x̄``.

    Parameters
    ----------
    x : (r,) or (r, g) float array
    weights : (r, r) float array

    Returns
    -------
    (g,) float array (dimensionless).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    z = x - x.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    return (x.shape[0] / w.sum()) * np.einsum("ig,ij,jg->g", z, w, z) / (z * z).sum(axis=0)


def moran_surrogates(x: np.ndarray, vectors: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Moran spectral randomisations of ``x`` for given sign draws.

    Parameters
    ----------
    x : (r,) or (r, g) float array
        One map, or a region × gene matrix randomised with one sign vector for all genes.
    vectors : (r, k) float array
        Moran eigenvector maps (`moran_eigenvectors`).
    signs : (n, k) array of ±1
        One row per null.

    Returns
    -------
    (n, r) array for a 1-D ``x``, else (n, r, g): ``x̄ + V (s ∘ Vᵀ(x − x̄))``.
    """
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    x2 = x[:, None] if single else x
    mean = x2.mean(axis=0)
    centred = x2 - mean
    coefficients = vectors.T @ centred  # (k, g)
    signs = np.asarray(signs)
    out = np.empty((signs.shape[0], x2.shape[0], x2.shape[1]))
    # V (s ∘ c) = x − x̄ − 2 V₋ c₋ = −(x − x̄) + 2 V₊ c₊ (V spans every zero-mean map):
    # the product runs over the smaller of the two sign sets only. It is written straight
    # into the output and finished in place (no (r, g) temporaries and their extra passes
    # over memory); −2P + (x − x̄) is the same IEEE sum as (x − x̄) − 2P, so bit-identical.
    for k, s in enumerate(signs):
        negative = s < 0
        flip = 2 * negative.sum() <= s.size
        chosen = negative if flip else ~negative
        product = out[k]
        np.matmul(vectors[:, chosen], coefficients[chosen], out=product)
        if flip:
            product *= -2.0
            product += centred
        else:
            product *= 2.0
            product -= centred
        product += mean
    return out[:, :, 0] if single else out


@dataclass(frozen=True)
class MoranPlan:
    """Sign draws of ``n`` Moran randomisations of some groups of regions.

    Each group (e.g. all regions, or one non-cortical structure class) is randomised on
    its own, with the eigenvectors of its own weight matrix.

    Attributes
    ----------
    groups : list of int arrays
        Global region indices of each group.
    vectors : list of (q, q − 1) float arrays
    signs : list of (n, q − 1) int8 arrays of ±1
    """

    groups: list[np.ndarray]
    vectors: list[np.ndarray]
    signs: list[np.ndarray]

    @property
    def regions(self) -> np.ndarray:
        """All regions whose expression the plan replaces, in group order."""
        return np.concatenate(self.groups) if self.groups else np.zeros(0, dtype=np.int64)

    def rows(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), q, g) new expression of `regions` in nulls ``draws``."""
        parts = [
            moran_surrogates(X[group], vectors, signs[draws])
            for group, vectors, signs in zip(self.groups, self.vectors, self.signs)
        ]
        # one group (method "moran": all regions) needs no copy into a joint array
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def keys(self, draws: np.ndarray) -> list[bytes]:
        """A byte key per draw (equal keys: equal nulls)."""
        return [b"".join(s[k].tobytes() for s in self.signs) for k in draws]

    def identity(self, draws: np.ndarray) -> np.ndarray:
        """(len(draws),) True where every sign is +1 (the null is the true expression)."""
        out = np.ones(len(draws), dtype=bool)
        for s in self.signs:
            out &= (s[draws] == 1).all(axis=1)
        return out


def plan_moran(
    coords: np.ndarray,
    groups: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    *,
    what: str = "moran",
) -> MoranPlan:
    """Eigenvectors of each group's inverse-distance weights and ``n`` sign vectors per group.

    Groups of fewer than 2 regions are left out (a single region has no randomisation).
    """
    kept, vectors, signs = [], [], []
    for group in groups:
        group = np.asarray(group, dtype=np.int64)
        if group.size < 2:
            continue
        weights = distance_weights(coords[group], None if labels is None else labels[group], what=what)
        v, _ = moran_eigenvectors(weights)
        kept.append(group)
        vectors.append(v)
        signs.append((rng.integers(0, 2, size=(n, v.shape[1]), dtype=np.int8) * 2 - 1).astype(np.int8))
    return MoranPlan(kept, vectors, signs)
