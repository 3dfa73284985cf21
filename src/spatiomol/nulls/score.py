"""Step 2 of `generate_nulls`: Algorithm 1's quantities and errors of drawn nulls (`score_nulls`).

Each scored null gets its binned CGE–distance curve, its six curve parameters
(``SA_lambda``, ``SA_inf``, ``a1``–``a4``, see `spatiomol.nulls.cge`) and its reassignment
``cost`` (`QUANTITIES`). Each quantity is z-scored with the mean and standard deviation
(``ddof=1``) across the scored nulls, the true brain's values (cost 0) with the same mean
and SD; the error is ``e_i = Σ_p |z(p_i) − z(p_true)|`` (`standardized_errors`). A
quantity with zero spread across the nulls carries no information and is left out of
``e_i``.

Families that replace expression rows (``moran``, ``variogram``, spins with
``subcortex="moran"``) are scored from their own expression; permuted nulls reuse the true
brain's CGE matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from spatiomol.data.brain import Brain
from spatiomol.nulls import cge as cge_module
from spatiomol.nulls.defaults import NULL_TUNING_DEFAULTS
from spatiomol.nulls.draw import NullDraws

#: the quantities of Algorithm 1, in the column order of `NullScores.values`
QUANTITIES = (*cge_module.CURVE_PARAMETERS, "cost")

__all__ = ["QUANTITIES", "NullScores", "score_nulls", "standardized_errors"]


def standardized_errors(null_values: np.ndarray, true_values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Algorithm 1's error of every null.

    Parameters
    ----------
    null_values : (n, q) float array
        Quantities of each null.
    true_values : (q,) float array
        Quantities of the true brain.

    Returns
    -------
    errors : (n,) float array
        ``Σ_p |z(null_p) − z(true_p)|`` with z-scores from the nulls' mean and SD (ddof=1).
    constant : list of int
        Columns with zero SD across nulls (left out of the sum).
    """
    null_values = np.asarray(null_values, dtype=np.float64)
    if null_values.shape[0] < 2:
        raise ValueError("z-scores across nulls need at least 2 nulls (n >= 2)")
    sd = null_values.std(axis=0, ddof=1)
    informative = sd > 0
    # (x - m)/sd - (t - m)/sd = (x - t)/sd
    z_diff = np.abs(null_values[:, informative] - np.asarray(true_values)[informative]) / sd[informative]
    return z_diff.sum(axis=1), np.flatnonzero(~informative).tolist()


@dataclass(frozen=True, eq=False)
class NullScores:
    """CGE–distance curves, fitted quantities and Algorithm 1 errors of scored nulls.

    Attributes
    ----------
    draws : (m,) int array
        Indices (among the ``n`` drawn) of the scored nulls.
    curves : (m, n_bins) float array
        Binned mean CGE of each scored null (Pearson r).
    values : (m, 7) float array
        `QUANTITIES` of each scored null.
    errors : (m,) float array
        ``e_i`` (dimensionless).
    constant : list of int
        Quantities with zero spread across the scored nulls (left out of ``e_i``).
    true_curve : (n_bins,) float array
    true_values : (7,) float array
        The true brain's quantities (cost 0).
    bins : DistanceBins
    pca_components : int or None
        Components of the PCA-CGE (``features="pca"``).
    """

    draws: np.ndarray
    curves: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    constant: list[int]
    true_curve: np.ndarray
    true_values: np.ndarray
    bins: cge_module.DistanceBins
    pca_components: int | None


def _standardised_rows(F: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm: their dot products are Pearson r."""
    centred = F - F.mean(axis=-1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=-1, keepdims=True)


def score_nulls(
    brain: Brain,
    draws: NullDraws,
    rows: np.ndarray | None = None,
    *,
    features: str = "genes",
    bin_mm: float = NULL_TUNING_DEFAULTS["bin_mm"],
    pca_variance: float = NULL_TUNING_DEFAULTS["pca_variance"],
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> NullScores:
    """Algorithm 1's quantities and errors of nulls ``rows`` (default all) of ``draws``.

    Parameters
    ----------
    brain : Brain
        The brain the nulls were drawn for.
    draws : NullDraws
    rows : int array or None
        Which draws to score (at least 2: errors are z-scores across them).
    features : {"genes", "pca"}
        CGE from the genes, or from the PCA scores of ``X`` keeping ``pca_variance``
        (replaced rows are projected on the true brain's components).
    bin_mm : float
        Width of the distance bins, mm.
    batch_size : int
        Nulls scored together (bounds temporaries only; rows that replace expression use
        batches of at most 64).
    n_jobs : int or None
        Threads of the compiled loops (None: every core this process may use).

    Returns
    -------
    NullScores

    Notes
    -----
    A permuted null's CGE matrix is the permuted true CGE matrix, ``C[p[i], p[j]]``: no
    correlation is recomputed. For replaced rows, only their correlations with the
    null's other rows are computed (a (q, g) × (g, r) product per null).
    """
    if features not in ("genes", "pca"):
        raise ValueError(f"features must be 'genes' or 'pca', got {features!r}")
    rows = np.arange(draws.n) if rows is None else np.asarray(rows, dtype=np.int64)
    what = f"brain {brain.name!r} expression (X)"
    X = np.asarray(brain.X, dtype=np.float64)
    F, project = _features(X, features, pca_variance, project_rows=draws.replaced.size > 0, what=what)
    cge = cge_module.correlated_gene_expression(F, what=what)
    bins = cge_module.DistanceBins.from_distances(brain.distances, bin_mm)
    if draws.replaced.size == 0:
        curves = _permuted_curves(cge, bins, draws, rows, batch_size, n_jobs)
    else:
        curves = _replaced_curves(cge, bins, draws, rows, X, F, project, batch_size, n_jobs)
    values = np.column_stack([cge_module.fit_curves(bins.centres, curves), draws.costs[rows]])
    true_curve = bins.curve(cge)
    true_values = np.append(cge_module.fit_curves(bins.centres, true_curve[None])[0], 0.0)
    errors, constant = standardized_errors(values, true_values)
    return NullScores(
        draws=rows,
        curves=curves,
        values=values,
        errors=errors,
        constant=constant,
        true_curve=true_curve,
        true_values=true_values,
        bins=bins,
        pca_components=int(F.shape[1]) if features == "pca" else None,
    )


def _features(
    X: np.ndarray, features: str, pca_variance: float, *, project_rows: bool, what: str
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray] | None]:
    """The region features the CGE is computed from, and the projection of new rows onto them.

    ``"genes"``: ``X`` itself (new rows need no projection: None). ``"pca"``: the PCA
    scores of ``X`` keeping ``pca_variance``; with ``project_rows``, the function that
    projects new expression rows on the same components (else None).
    """
    if features != "pca":
        return X, None
    F = cge_module.pca_scores(X, pca_variance, what=what)
    if not project_rows:
        return F, None
    pca = PCA(n_components=F.shape[1], svd_solver="full").fit(X)

    def project(new: np.ndarray) -> np.ndarray:
        return (new - pca.mean_) @ pca.components_.T

    return F, project


def _permuted_curves(
    cge: np.ndarray,
    bins: cge_module.DistanceBins,
    draws: NullDraws,
    rows: np.ndarray,
    batch_size: int,
    n_jobs: int | None,
) -> np.ndarray:
    """(len(rows), n_bins) curves of pure-permutation nulls: the true CGE, permuted and binned."""
    curves = np.empty((rows.size, bins.used.size))
    for start in range(0, rows.size, batch_size):
        part = rows[start : start + batch_size]
        curves[start : start + part.size] = bins.null_curves(cge, draws.permutations[part], n_jobs)
    return curves


def _replaced_curves(
    cge: np.ndarray,
    bins: cge_module.DistanceBins,
    draws: NullDraws,
    rows: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    project: Callable[[np.ndarray], np.ndarray] | None,
    batch_size: int,
    n_jobs: int | None,
) -> np.ndarray:
    """(len(rows), n_bins) curves of nulls that replace rows ``draws.replaced``.

    The permuted rows reuse the true CGE; only the correlations of the new rows with every
    row of their null are computed, in batches of at most 64 nulls.
    """
    curves = np.empty((rows.size, bins.used.size))
    n_regions = X.shape[0]
    Z = _standardised_rows(F)
    step = min(batch_size, 64)
    for start in range(0, rows.size, step):
        part = rows[start : start + step]
        new = draws.replaced_rows(X, part)
        Z_new = _standardised_rows(project(new) if project else new)  # (m, q, features)
        m, q = Z_new.shape[:2]
        new_corr = np.empty((m, q, n_regions))
        if q < n_regions:
            # with the true rows: one product, then each null's permutation of the columns
            with_true = (Z_new.reshape(m * q, -1) @ Z.T).reshape(m, q, -1)
            new_corr[:] = np.take_along_axis(with_true, draws.permutations[part][:, None, :], axis=2)
        for b in range(m):
            new_corr[b][:, draws.replaced] = Z_new[b] @ Z_new[b].T
        curves[start : start + part.size] = bins.replaced_curves(
            cge, draws.permutations[part], draws.replaced, new_corr, n_jobs
        )
    return curves
