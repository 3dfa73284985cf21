"""Correlated gene expression (CGE) against distance: binned curves and their fits, in batch.

The CGE–distance curve of a brain is the mean correlation of regional expression
profiles in 5 mm bins of centroid distance (Algorithm 1, Fig. 3). Two curves summarise
it: an exponential ``f(d) = SA_inf + (1 − SA_inf)·exp(−d / SA_lambda)`` and a cubic
``g(d) = a1·d³ + a2·d² + a3·d + a4`` (Algorithm 1's notation: ``a1`` is the cubic
coefficient; the paper's code stores the same four numbers lowest order first).

A null brain only permutes rows of ``X``, so its CGE matrix is the permuted CGE matrix of
the true brain (``C_null[i, j] = C[perm[i], perm[j]]``) and its distances are the true
distances. Nothing is recomputed per null: the pairs and their bins are fixed, the
binned means of a batch of nulls are gathers from ``C`` followed by one segmented sum,
and both fits are solved for the whole batch at once.

Fitting conventions (those of the paper's code, ``sim/null.py``):

- bins ``[0, 5), [5, 10), …`` up to the largest distance (edges
  ``arange(0, max d + 5, 5)``, the last bin closed), points at the bin centres;
- every non-empty bin has the same weight (an unweighted fit of the bin means);
- exponential bounds ``SA_inf ∈ [−1, 1]``, ``SA_lambda ∈ (0, 100]`` mm (the open lower
  bound is represented by ``SA_LAMBDA_MIN`` = 0.05 mm, below which the curve is flat at
  every bin centre ≥ 2.5 mm to within e^-50).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from spatiomol.nulls import _kernels

SA_INF_BOUNDS = (-1.0, 1.0)
SA_LAMBDA_MIN = 0.05
SA_LAMBDA_MAX = 100.0
CURVE_PARAMETERS = ("SA_lambda", "SA_inf", "a1", "a2", "a3", "a4")


# ------------------------------------------------------------------ CGE matrices
def _check_expression(X: np.ndarray, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{what}: expected a (regions, genes) matrix, got shape {X.shape}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{what}: rows {bad[:10].tolist()} ({bad.size} in all) contain NaN/inf expression; "
            "impute or drop them first (spatiomol.data.impute)"
        )
    flat = np.flatnonzero(np.ptp(X, axis=1) == 0)
    if flat.size:
        raise ValueError(
            f"{what}: rows {flat[:10].tolist()} have constant expression, so their correlation "
            "with other regions is undefined"
        )
    return X


def correlated_gene_expression(X: np.ndarray, what: str = "expression") -> np.ndarray:
    """Pearson correlation between the expression profiles of every pair of regions.

    Parameters
    ----------
    X : (r, g) float array
        Regional expression; no NaN rows.

    Returns
    -------
    (r, r) float array, Pearson r (``np.corrcoef`` of the rows).
    """
    return np.corrcoef(_check_expression(X, what))


def pca_scores(X: np.ndarray, variance: float = 0.95, what: str = "expression") -> np.ndarray:
    """Principal-component scores of ``X`` keeping a fraction of the variance.

    Parameters
    ----------
    X : (r, g) float array
    variance : float in (0, 1]
        Smallest number of components whose cumulative explained variance reaches it
        (``sklearn.decomposition.PCA(n_components=variance)``, genes centred, not scaled).

    Returns
    -------
    (r, k) float array of scores.
    """
    X = _check_expression(X, what)
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"pca variance must be in (0, 1], got {variance}")
    if variance == 1.0:
        return PCA(svd_solver="full").fit_transform(X)
    return PCA(n_components=variance, svd_solver="full").fit_transform(X)


# --------------------------------------------------------------------- binning
@dataclass(frozen=True)
class DistanceBins:
    """Fixed region pairs sorted by distance bin.

    Attributes
    ----------
    width : float
        Bin width, mm.
    edges : (n_bins + 1,) float array, mm
    pair_i, pair_j : (n_pairs,) int arrays
        All pairs ``i < j``, ordered by bin.
    bin_index : (r, r) int32 array
        Index (into ``used``) of the bin of pair ``(i, j)``, filled above the diagonal.
    counts : (n_used,) int array
        Pairs per non-empty bin.
    used : (n_used,) int array
        Indices of the non-empty bins.
    centres : (n_used,) float array, mm
        Centres of the non-empty bins (the fitting abscissae).
    """

    width: float
    edges: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray
    bin_index: np.ndarray
    counts: np.ndarray
    used: np.ndarray
    centres: np.ndarray

    @classmethod
    def from_distances(cls, distances: np.ndarray, width: float = 5.0) -> DistanceBins:
        """Bin every pair ``i < j`` of a (r, r) distance matrix (mm) into ``width``-mm bins."""
        distances = np.asarray(distances, dtype=np.float64)
        if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
            raise ValueError(f"distances must be a square matrix, got {distances.shape}")
        if not width > 0:
            raise ValueError(f"bin width must be positive (mm), got {width}")
        i, j = np.triu_indices(distances.shape[0], k=1)
        d = distances[i, j]
        if d.size == 0:
            raise ValueError("need at least two regions to bin pair distances")
        edges = np.arange(0.0, d.max() + width, width)
        # scipy.stats.binned_statistic's rule: right-open bins, the last one closed
        bin_of_pair = np.searchsorted(edges, d, side="right") - 1
        bin_of_pair[d == edges[-1]] = len(edges) - 2
        order = np.argsort(bin_of_pair, kind="stable")
        sorted_bins = bin_of_pair[order]
        used, counts = np.unique(sorted_bins, return_counts=True)
        centres = (edges[:-1] + edges[1:])[used] / 2.0
        bin_index = np.zeros(distances.shape, dtype=np.int32)
        bin_index[i, j] = np.searchsorted(used, bin_of_pair)
        return cls(float(width), edges, i[order], j[order], bin_index, counts, used, centres)

    def curve(self, cge: np.ndarray) -> np.ndarray:
        """Binned mean CGE of one brain: (n_used,) array, Pearson r."""
        identity = np.arange(cge.shape[0], dtype=np.int64)[None]
        return self.null_curves(cge, identity)[0]

    def null_curves(self, cge: np.ndarray, permutations: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """Binned mean CGE of null brains, without recomputing any correlation.

        Parameters
        ----------
        cge : (r, r) float array
            CGE matrix of the true brain.
        permutations : (n, r) int array
            Null ``k`` gives region ``i`` the expression of region ``permutations[k, i]``.
        n_jobs : int or None
            Threads over nulls (None: every core this process may use).

        Returns
        -------
        (n, n_used) float array: mean over pairs ``(i, j)`` of each bin of
        ``cge[p[i], p[j]]`` (a compiled gather and sum, parallel over nulls).
        """
        cge = np.ascontiguousarray(cge, dtype=np.float64)
        perms = np.ascontiguousarray(np.atleast_2d(permutations), dtype=np.int64)
        if perms.shape[1] != cge.shape[0] or perms.min() < 0 or perms.max() >= cge.shape[0]:
            raise ValueError(f"permutations of shape {perms.shape} do not index a {cge.shape} CGE matrix")
        out = np.empty((perms.shape[0], self.used.size))
        bin_index, n_used = self.bin_index, self.used.size
        _kernels.run_in_threads(
            lambda a, b: _kernels.binned_sums_rows(cge, perms, bin_index, n_used, out, a, b), perms.shape[0], n_jobs
        )
        out /= self.counts
        return out

    def replaced_curves(
        self,
        cge: np.ndarray,
        permutations: np.ndarray,
        replaced: np.ndarray,
        new_corr: np.ndarray,
        n_jobs: int | None = None,
    ) -> np.ndarray:
        """Binned mean CGE of nulls whose ``replaced`` regions hold new expression.

        Parameters
        ----------
        cge : (r, r) float array
            CGE matrix of the true brain (pairs of two permuted regions).
        permutations : (n, r) int array
        replaced : (q,) int array
            Regions whose rows are new in every null.
        new_corr : (n, q, r) float array
            Pearson r between each replaced row and every row of the same null.
        n_jobs : int or None

        Returns
        -------
        (n, n_used) float array.
        """
        cge = np.ascontiguousarray(cge, dtype=np.float64)
        perms = np.ascontiguousarray(np.atleast_2d(permutations), dtype=np.int64)
        new_corr = np.ascontiguousarray(new_corr, dtype=np.float64)
        position = np.full(cge.shape[0], -1, dtype=np.int64)
        position[np.asarray(replaced, dtype=np.int64)] = np.arange(len(replaced))
        out = np.empty((perms.shape[0], self.used.size))
        bin_index, n_used = self.bin_index, self.used.size
        _kernels.run_in_threads(
            lambda a, b: _kernels.binned_sums_replaced_rows(
                cge, perms, position, new_corr, bin_index, n_used, out, a, b
            ),
            perms.shape[0],
            n_jobs,
        )
        out /= self.counts
        return out


# ---------------------------------------------------------------------- fits
def exponential_curve(d: np.ndarray, sa_inf, sa_lambda) -> np.ndarray:
    """``SA_inf + (1 − SA_inf)·exp(−d / SA_lambda)`` (d and SA_lambda in mm)."""
    return sa_inf + (1.0 - sa_inf) * np.exp(-np.asarray(d) / sa_lambda)


def cubic_curve(d: np.ndarray, a1, a2, a3, a4) -> np.ndarray:
    """``a1·d³ + a2·d² + a3·d + a4`` (d in mm)."""
    d = np.asarray(d)
    return ((a1 * d + a2) * d + a3) * d + a4


def fit_cubic(centres: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Least-squares cubic through each curve, all curves at once.

    Parameters
    ----------
    centres : (k,) float array, mm
    curves : (n, k) float array

    Returns
    -------
    (n, 4) float array: ``a1`` (d³), ``a2`` (d²), ``a3`` (d), ``a4`` (constant).

    Notes
    -----
    One pseudo-inverse of the Vandermonde matrix serves every curve; distances are
    scaled to [0, 1] first so the matrix is well conditioned, then the coefficients are
    scaled back (same solution as ``np.polyfit(centres, curve, 3)``).
    """
    centres = np.asarray(centres, dtype=np.float64)
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    if centres.size < 4:
        raise ValueError(f"a cubic fit needs at least 4 non-empty distance bins, got {centres.size}")
    scale = centres.max()
    vander = np.vander(centres / scale, 4)
    coef = curves @ np.linalg.pinv(vander).T
    return coef / scale ** np.arange(3, -1, -1)


def _exponential_sse(curves, centres, lam):
    """Closed-form SA_inf (clipped to its bounds) and the SSE, for SA_lambda per curve.

    For fixed λ the model ``e + s·(1 − e)`` with ``e = exp(−d/λ)`` is linear in ``s``; the
    SSE is a convex quadratic in ``s``, so clipping the unconstrained optimum to the
    bounds gives the constrained optimum.
    """
    e = np.exp(-centres[None, :] / lam[:, None])
    basis = 1.0 - e
    resid0 = curves - e
    denom = (basis * basis).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(denom > 0, (resid0 * basis).sum(axis=1) / denom, 0.0)
    s = np.clip(s, *SA_INF_BOUNDS)
    resid = resid0 - s[:, None] * basis
    return s, (resid * resid).sum(axis=1)


def fit_exponential(
    centres: np.ndarray,
    curves: np.ndarray,
    *,
    grid_size: int = 160,
    refine_steps: int = 40,
) -> np.ndarray:
    """Bounded least-squares fit of ``SA_inf + (1 − SA_inf)·exp(−d/SA_lambda)``, in batch.

    ``SA_lambda`` is profiled: on a log-spaced grid over [``SA_LAMBDA_MIN``,
    ``SA_LAMBDA_MAX``] mm the optimal ``SA_inf`` is closed-form, and the best grid point's
    bracket is refined by golden-section search (``refine_steps`` steps shrink it by
    0.618 each). Same objective and bounds as ``scipy.optimize.curve_fit(...,
    bounds=([-1, 0], [1, 100]))``; unlike a local solver it cannot stop in a local minimum
    coarser than the grid.

    Parameters
    ----------
    centres : (k,) float array, mm
    curves : (n, k) float array (mean CGE, Pearson r)

    Returns
    -------
    (n, 2) float array: ``SA_lambda`` (mm), ``SA_inf`` (r).
    """
    centres = np.asarray(centres, dtype=np.float64)
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    n = curves.shape[0]
    if centres.size < 2:
        raise ValueError(f"an exponential fit needs at least 2 non-empty distance bins, got {centres.size}")
    grid = np.geomspace(SA_LAMBDA_MIN, SA_LAMBDA_MAX, grid_size)
    # SSE on the grid for all curves at once, by expanding the squares (matrix products)
    E = np.exp(-centres[None, :] / grid[:, None])  # (L, k)
    B = 1.0 - E
    yy = (curves * curves).sum(axis=1)[:, None]
    yE = curves @ E.T
    yB = curves @ B.T
    EB = (E * B).sum(axis=1)[None, :]
    BB = (B * B).sum(axis=1)[None, :]
    EE = (E * E).sum(axis=1)[None, :]
    s = np.clip((yB - EB) / BB, *SA_INF_BOUNDS)
    sse = yy - 2 * yE - 2 * s * yB + EE + 2 * s * EB + s * s * BB
    best = sse.argmin(axis=1)
    lo = np.log(grid[np.maximum(best - 1, 0)])
    hi = np.log(grid[np.minimum(best + 1, grid_size - 1)])
    # golden-section search on log λ inside the bracket
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    x1 = hi - ratio * (hi - lo)
    x2 = lo + ratio * (hi - lo)
    _, f1 = _exponential_sse(curves, centres, np.exp(x1))
    _, f2 = _exponential_sse(curves, centres, np.exp(x2))
    for _ in range(refine_steps):
        left = f1 < f2  # minimum in [lo, x2] where True, in [x1, hi] where False
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        new_x1 = np.where(left, hi - ratio * (hi - lo), x2)
        new_x2 = np.where(left, x1, lo + ratio * (hi - lo))
        _, f_probe = _exponential_sse(curves, centres, np.exp(np.where(left, new_x1, new_x2)))
        f1, f2 = np.where(left, f_probe, f2), np.where(left, f1, f_probe)
        x1, x2 = new_x1, new_x2
    candidates = np.stack([np.exp(x1), np.exp(x2), grid[best]], axis=1)
    sa_inf = np.empty((n, 3))
    errors = np.empty((n, 3))
    for c in range(3):
        sa_inf[:, c], errors[:, c] = _exponential_sse(curves, centres, candidates[:, c])
    pick = errors.argmin(axis=1)
    rows = np.arange(n)
    return np.column_stack([candidates[rows, pick], sa_inf[rows, pick]])


def fit_curves(centres: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Both fits for a batch of curves.

    Returns
    -------
    (n, 6) float array with columns `CURVE_PARAMETERS`:
    ``SA_lambda`` (mm), ``SA_inf``, ``a1`` … ``a4``.
    """
    return np.column_stack([fit_exponential(centres, curves), fit_cubic(centres, curves)])
