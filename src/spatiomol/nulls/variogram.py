"""Variogram-matched surrogate maps (Burt et al. 2020, the method of ``brainsmash``).

For one map ``x`` over regions with distance matrix ``D`` (mm):

1. the *smoothed variogram* of a map: over the region pairs closer than the ``pv``-th
   percentile of distances, ``v_ij = ½ (x_i − x_j)²``, averaged with Gaussian weights
   ``exp(−½ (2.68 |d_ij − h| / b)²)`` at ``nh`` distances ``h`` spanning those pairs,
   bandwidth ``b`` = 3 × the spacing of ``h``;
2. a surrogate: permute ``x`` at random, smooth it with each region's ``k = δ·r`` nearest
   neighbours (weights ``exp(−d / d_max)`` normalised per region, ``d_max`` the distance
   to the ``k``-th neighbour), regress the target variogram on the smoothed map's variogram
   (``γ_x ≈ α + β γ_smooth``), and return ``√|β| · smooth + √|α| · N(0, 1)``, de-meaned.

These are brainsmash's ``Base`` defaults and formulas (``deltas`` 0.1 … 0.9, ``pv`` 25,
``nh`` 25, exponential kernel, ``resample=False``). One difference, for speed: brainsmash
tries every ``δ`` for every surrogate and keeps the best fit; `VariogramModel` picks, per
map, the ``δ`` whose surrogates fit best on ``pilot`` draws and then regresses ``α, β``
for every surrogate at that ``δ``. The smoothing of a batch of permuted maps is then one
matrix product, and the variogram of a batch another (``weights @ v``). The tests compare
the surrogates' variograms with brainsmash's on the same map.

For a region × gene matrix (`PCAVariogramPlan`) the maps are the principal-component
scores of ``X``: each kept component gets its own surrogate, the surrogates of one null
are made exactly orthogonal (symmetric, Löwdin orthogonalisation) and rescaled to the
components' norms, and ``X* = x̄ + S* Wᵀ``. The gene–gene covariance of ``X*`` is thus
exactly that of the kept components of ``X`` (all of ``X`` when ``pca_variance = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

DELTAS = tuple(np.round(np.linspace(0.1, 0.9, 9), 10))
PERCENTILE = 25.0
N_DISTANCES = 25
PILOT = 32


@dataclass(frozen=True)
class VariogramModel:
    """Everything about region geometry that the surrogates of any map need.

    Attributes
    ----------
    pair_i, pair_j : (p,) int arrays
        Region pairs closer than the ``pv``-th distance percentile.
    h : (nh,) float array, mm
        Distances at which the smoothed variogram is evaluated.
    variogram_weights : (nh, p) float array
        Row-normalised Gaussian weights: ``γ = variogram_weights @ v``.
    smoothers : dict of float → (r, r) float array
        For each ``δ``, the row-stochastic nearest-neighbour smoothing matrix.
    """

    pair_i: np.ndarray
    pair_j: np.ndarray
    h: np.ndarray
    variogram_weights: np.ndarray
    smoothers: dict[float, np.ndarray]

    @classmethod
    def from_distances(
        cls,
        distances: np.ndarray,
        deltas: tuple[float, ...] = DELTAS,
        pv: float = PERCENTILE,
        nh: int = N_DISTANCES,
    ) -> VariogramModel:
        """Build the model of a (r, r) distance matrix (mm)."""
        d = np.asarray(distances, dtype=np.float64)
        r = d.shape[0]
        i, j = np.triu_indices(r, k=1)
        u = d[i, j]
        close = np.flatnonzero(u < np.percentile(u, pv))
        if close.size < 3:
            raise ValueError(f"variogram: only {close.size} region pairs below the {pv}th distance percentile")
        u = u[close]
        h = np.linspace(u.min(), u.max(), nh)
        bandwidth = 3.0 * (h[1] - h[0])
        weights = np.exp(-np.square(2.68 * np.abs(u[None, :] - h[:, None]) / bandwidth) / 2.0)
        weights /= weights.sum(axis=1, keepdims=True)
        order = np.argsort(d, axis=1, kind="stable")
        smoothers = {}
        for delta in deltas:
            k = int(delta * r)
            if k < 1:
                raise ValueError(f"variogram: delta={delta} keeps no neighbour among {r} regions")
            neighbours = order[:, 1 : k + 1]  # without the region itself
            dk = np.take_along_axis(d, neighbours, axis=1)
            kernel = np.exp(-dk / dk.max(axis=1, keepdims=True))
            kernel /= kernel.sum(axis=1, keepdims=True)
            s = np.zeros((r, r))
            np.put_along_axis(s, neighbours, kernel, axis=1)
            smoothers[float(delta)] = s
        return cls(i[close], j[close], h, np.ascontiguousarray(weights), smoothers)

    def variogram(self, maps: np.ndarray) -> np.ndarray:
        """Smoothed variograms of maps: (r,) → (nh,), (r, m) → (nh, m)."""
        diff = maps[self.pair_i] - maps[self.pair_j]
        return self.variogram_weights @ (0.5 * diff * diff)

    @staticmethod
    def regress(surrogate: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Least-squares ``target ≈ α + β · surrogate`` per column: α, β, residual sum of squares."""
        xm = surrogate.mean(axis=0)
        xc = surrogate - xm
        tc = target - target.mean()
        beta = (xc * tc[:, None]).sum(axis=0) / (xc * xc).sum(axis=0)
        alpha = target.mean() - beta * xm
        residual = target[:, None] - (alpha + beta * surrogate)
        return alpha, beta, (residual * residual).sum(axis=0)

    def best_delta(self, x: np.ndarray, rng: np.random.Generator, pilot: int = PILOT) -> float:
        """The ``δ`` whose surrogates of ``x`` fit its variogram best (median SSE over ``pilot`` draws)."""
        target = self.variogram(x)
        permuted = x[rng.random((pilot, x.size)).argsort(axis=1)].T  # (r, pilot)
        best, best_sse = None, np.inf
        for delta, smoother in self.smoothers.items():
            sse = np.median(self.regress(self.variogram(smoother @ permuted), target)[2])
            if sse < best_sse:
                best, best_sse = delta, sse
        return best

    def surrogates(
        self, x: np.ndarray, delta: float, permutations: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surrogates of map ``x`` from given draws.

        Parameters
        ----------
        x : (r,) float array
        delta : float, a key of ``smoothers``
        permutations : (m, r) int array
            Surrogate ``k`` starts from ``x[permutations[k]]``.
        noise : (m, r) float array
            Standard-normal draws.

        Returns
        -------
        maps : (m, r) float array, de-meaned
        sse : (m,) float array
            Residual sum of squares of each surrogate's variogram fit.
        """
        target = self.variogram(x)
        smooth = self.smoothers[float(delta)] @ x[permutations].T  # (r, m)
        alpha, beta, sse = self.regress(self.variogram(smooth), target)
        maps = np.sqrt(np.abs(beta)) * smooth + np.sqrt(np.abs(alpha)) * noise.T
        maps -= maps.mean(axis=0)
        return maps.T, sse


def orthogonalise(scores: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Closest matrix with orthogonal, zero-mean columns of the given norms (Löwdin).

    Parameters
    ----------
    scores : (r, k) float array
    norms : (k,) float array

    Returns
    -------
    (r, k) array ``Q diag(norms)`` with ``Q = S (SᵀS)^{-1/2}`` for the column-centred ``S``:
    of all matrices with orthonormal columns, ``Q`` is the closest to ``S`` (Frobenius).
    """
    centred = scores - scores.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    inverse_root = (vectors / np.sqrt(np.maximum(values, np.finfo(float).tiny))) @ vectors.T
    return centred @ inverse_root * norms


@dataclass(frozen=True)
class PCAVariogramPlan:
    """Variogram-matched nulls of a region × gene matrix through its principal components.

    Attributes
    ----------
    regions : (q,) int array
        Regions whose expression the nulls replace (all regions).
    mean : (g,) float array
    components : (k, g) float array
        PCA loadings (rows orthonormal).
    scores : (q, k) float array
    norms : (k,) float array
        Euclidean norms of the score columns.
    deltas : (k,) float array
        Smoothing neighbourhood chosen for each component.
    model : VariogramModel
    seeds : (n,) uint64 array
        Seed of each null's generator, so that a null does not depend on batching.
    """

    regions: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    scores: np.ndarray
    norms: np.ndarray
    deltas: np.ndarray
    model: VariogramModel
    seeds: np.ndarray

    def surrogate_scores(self, draws: np.ndarray) -> np.ndarray:
        """(len(draws), q, k) orthogonalised surrogate scores of nulls ``draws``.

        Null ``k`` draws its permutations and noise from its own generator
        (``seeds[k]``); the smoothing and variograms of a batch are matrix products.
        """
        q, c = self.scores.shape
        m = len(draws)
        permutations = np.empty((c, m, q), dtype=np.int64)
        noise = np.empty((c, m, q))
        for row, k in enumerate(draws):
            rng = np.random.default_rng(int(self.seeds[k]))
            permutations[:, row] = rng.random((c, q)).argsort(axis=1)
            noise[:, row] = rng.standard_normal((c, q))
        out = np.empty((m, q, c))
        for comp in range(c):
            out[:, :, comp] = self.model.surrogates(
                self.scores[:, comp], self.deltas[comp], permutations[comp], noise[comp]
            )[0]
        return np.stack([orthogonalise(s, self.norms) for s in out])

    def rows(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), q, g) null expression of `regions`."""
        return self.mean + self.surrogate_scores(np.asarray(draws)) @ self.components

    def keys(self, draws: np.ndarray) -> list[bytes]:
        return [self.seeds[k].tobytes() for k in draws]

    def identity(self, draws: np.ndarray) -> np.ndarray:
        return np.zeros(len(draws), dtype=bool)


def plan_pca_variogram(
    X: np.ndarray,
    distances: np.ndarray,
    n: int,
    rng: np.random.Generator,
    variance: float = 0.95,
    *,
    model: VariogramModel | None = None,
) -> PCAVariogramPlan:
    """PCA of ``X`` (genes centred, components reaching ``variance``), the ``δ`` of each
    component, and one seed per null."""
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"variogram: pca_variance must be in (0, 1], got {variance}")
    pca = PCA(n_components=None if variance == 1.0 else variance, svd_solver="full").fit(X)
    keep = pca.explained_variance_ > pca.explained_variance_.max() * 1e-12
    components = pca.components_[keep]
    scores = (X - pca.mean_) @ components.T
    model = model or VariogramModel.from_distances(distances)
    deltas = np.array([model.best_delta(scores[:, c], rng) for c in range(scores.shape[1])])
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)
    return PCAVariogramPlan(
        regions=np.arange(X.shape[0]),
        mean=pca.mean_,
        components=components,
        scores=scores,
        norms=np.linalg.norm(scores, axis=0),
        deltas=deltas,
        model=model,
        seeds=seeds,
    )
