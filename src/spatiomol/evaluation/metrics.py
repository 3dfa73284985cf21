"""Test-edge metrics (paper §4 and App. A.2) as tidy rows, and their aggregation.

`evaluate` scores predictions on a set of edges (normally every pair of a split's test
regions) and returns one row per (metric, stratum)::

    {"metric": "pearson", "stratum": "distance:short", "value": 0.71, "n_edges": 812}

Global metrics (``stratum="all"``): ``pearson``, ``spearman``, ``r2``, ``mse``, ``mae``,
``geodesic``. Stratified Pearson r (``metric="pearson"``) over the strata named by
`stratum_masks`. Definitions, thresholds and edge cases are documented in
``docs/evaluation.md``. Values are on the brain's target scale (Pearson r for the
bundled functional connectomes); the geodesic compares correlation matrices, so on the
``fisher_z`` scale it is taken between ``tanh`` of the true and predicted values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.stats

from spatiomol.data.brain import STRONG_EDGE_R, Brain

#: a stratum with fewer edges than this reports NaN instead of a correlation
MIN_STRATUM_EDGES = 10
#: distance bins (mm): short < 60 <= mid < 120 <= long (paper A.2: thirds of 180 mm)
DISTANCE_BINS_MM = (60.0, 120.0)
#: eigenvalue floor of the connectome matrices before the geodesic (Venkatesh et al. 2020)
EIGENVALUE_FLOOR = 1e-3
#: reporting order of networks (Yeo 7 in the Schaefer order, then non-cortical); others follow
CANONICAL_NETWORKS = (
    "Vis",
    "SomMot",
    "DorsAttn",
    "SalVentAttn",
    "Limbic",
    "Cont",
    "Default",
    "Subcortex",
    "Cerebellum",
)
GLOBAL_METRICS = ("pearson", "spearman", "r2", "mse", "mae", "geodesic")


# ----------------------------------------------------------------- elementwise
def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation of two (n,) arrays; NaN when n < 2 or either is constant."""
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    return float(np.clip(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)), -1.0, 1.0))


def spearman_rho(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman rank correlation: Pearson r of average ranks (ties share their mean rank)."""
    return pearson_r(scipy.stats.rankdata(y_true), scipy.stats.rankdata(y_pred))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (scikit-learn's `r2_score`).

    ``SS_tot`` is taken around the mean of ``y_true``; R² can be negative. When
    ``y_true`` is constant: 1.0 for a perfect prediction, else 0.0 (as scikit-learn).
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    ss_res = float(np.sum((t - p) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error, in squared target units."""
    return float(np.mean((np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)) ** 2))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in target units."""
    return float(np.mean(np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64))))


# ------------------------------------------------------------------- geodesic
def edges_to_matrix(
    i: np.ndarray, j: np.ndarray, values: np.ndarray, diagonal: float = 1.0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Symmetric matrix over the regions of a complete edge set.

    Parameters
    ----------
    i, j : (n_edges,) int arrays
        Edges; together they must be every unordered pair of their ``k`` regions once.
    values : (n_edges,) float array
    diagonal : float

    Returns
    -------
    (matrix, regions) or None
        ``matrix`` (k, k) with ``matrix[a, b] = matrix[b, a] = values`` of the edge between
        ``regions[a]`` and ``regions[b]``; ``None`` when the edges are not a complete set
        of pairs (each exactly once), so no matrix is defined.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    regions = np.unique(np.concatenate([i, j]))
    k = regions.size
    if k < 2 or i.size != k * (k - 1) // 2:
        return None
    a = np.searchsorted(regions, i)
    b = np.searchsorted(regions, j)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if np.any(lo == hi) or np.unique(lo * k + hi).size != i.size:
        return None
    matrix = np.full((k, k), float(diagonal))
    matrix[lo, hi] = values
    matrix[hi, lo] = values
    return matrix, regions


def regularize_spd(matrix: np.ndarray, floor: float = EIGENVALUE_FLOOR) -> np.ndarray:
    """Symmetric positive-definite version of a symmetric matrix: eigenvalues < ``floor`` set to ``floor``.

    ``Q diag(max(λ, floor)) Qᵀ`` from the eigendecomposition ``Q diag(λ) Qᵀ`` of
    ``(M + Mᵀ)/2`` (Venkatesh et al. 2020 lift small eigenvalues to 1e-3).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {m.shape}")
    eigenvalues, eigenvectors = np.linalg.eigh((m + m.T) / 2.0)
    lifted = np.maximum(eigenvalues, floor)
    out = (eigenvectors * lifted) @ eigenvectors.T
    return (out + out.T) / 2.0


def riemann_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Affine-invariant Riemannian distance ``‖log(A^{-1/2} B A^{-1/2})‖_F`` of SPD matrices.

    Computed from the generalized eigenvalues ``λ`` of ``B v = λ A v`` (the eigenvalues of
    ``A^{-1} B``): ``sqrt(Σ log(λ)²)``.
    """
    eigenvalues = scipy.linalg.eigvalsh(b, a)
    if np.any(eigenvalues <= 0):
        raise ValueError("riemann_distance: matrices must be symmetric positive definite")
    return float(np.sqrt(np.sum(np.log(eigenvalues) ** 2)))


def geodesic_distance(true_matrix: np.ndarray, pred_matrix: np.ndarray, floor: float = EIGENVALUE_FLOOR) -> float:
    """Geodesic distance between a true and a predicted connectome (k, k).

    Both get diagonal 1 and eigenvalues lifted to ``floor`` (`regularize_spd`), then the
    affine-invariant Riemannian distance (`riemann_distance`) is taken. Dimensionless.
    """
    t = np.array(true_matrix, dtype=np.float64)
    p = np.array(pred_matrix, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"expected two square matrices of equal shape, got {t.shape} and {p.shape}")
    np.fill_diagonal(t, 1.0)
    np.fill_diagonal(p, 1.0)
    return riemann_distance(regularize_spd(t, floor), regularize_spd(p, floor))


def _geodesic_values(brain: Brain, values: np.ndarray) -> np.ndarray:
    """Edge values on the correlation (Pearson-r) scale the geodesic assumes.

    Fisher-z targets (and predictions on that scale) are mapped back with ``tanh``;
    ``r`` and ``raw`` values are used as they are.
    """
    if brain.target_scale == "fisher_z":
        return np.tanh(values)
    return values


def _evaluate_geodesic(brain: Brain, i: np.ndarray, j: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Geodesic of the test-region connectomes; NaN when undefined or not computable.

    NaN when the edges are not every pair of their regions, and when the distance cannot
    be computed (a diverged prediction, e.g. values of order 1e12, leaves the generalized
    eigenproblem without positive eigenvalues): one bad prediction set must not cost the
    other metrics of the run.
    """
    true_matrix = edges_to_matrix(i, j, _geodesic_values(brain, y_true))
    pred_matrix = edges_to_matrix(i, j, _geodesic_values(brain, y_pred))
    if true_matrix is None or pred_matrix is None:
        return float("nan")
    try:
        value = geodesic_distance(true_matrix[0], pred_matrix[0])
    except (ValueError, np.linalg.LinAlgError):
        return float("nan")
    return value if np.isfinite(value) else float("nan")


# -------------------------------------------------------------------- strata
def _strength_values(brain: Brain, y_true: np.ndarray) -> np.ndarray:
    """Targets on the Pearson-r scale where the brain's scale allows it."""
    if brain.target_scale == "fisher_z":
        return np.tanh(y_true)
    return y_true


def _network_order(network: np.ndarray) -> list[str]:
    present = list(pd.unique(network))
    canonical = [n for n in CANONICAL_NETWORKS if n in present]
    return canonical + [n for n in present if n not in CANONICAL_NETWORKS]


def stratum_masks(brain: Brain, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean edge masks of every stratum, in reporting order.

    Strata (``d`` = centroid distance in mm, ``y`` = true target on the r scale):

    - ``distance:short`` d < 60; ``distance:mid`` 60 <= d < 120; ``distance:long`` d >= 120
    - ``hemisphere:intra`` both ends L or both R; ``hemisphere:inter`` one L, one R
      (edges touching a bilateral/midline ``B`` region are in neither)
    - ``strength:strong-positive`` y > 0.3; ``strength:strong-negative`` y < -0.3;
      ``strength:weak`` -0.3 <= y <= 0.3
    - for every network ``N`` of the brain (`CANONICAL_NETWORKS` order, then any other
      names in order of first appearance):
      ``network:N:intra`` both ends in N; ``network:N:rest`` exactly one end in N

    Parameters
    ----------
    brain : Brain
    i, j : (n_edges,) int arrays

    Returns
    -------
    dict of str → (n_edges,) bool array
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    d = brain.distances[i, j]
    short, long_ = DISTANCE_BINS_MM
    y = _strength_values(brain, brain.targets(i, j))
    hemi = brain.hemisphere.astype(str)
    hi, hj = hemi[i], hemi[j]
    lateral = np.isin(hi, ("L", "R")) & np.isin(hj, ("L", "R"))
    masks = {
        "distance:short": d < short,
        "distance:mid": (d >= short) & (d < long_),
        "distance:long": d >= long_,
        "hemisphere:intra": lateral & (hi == hj),
        "hemisphere:inter": lateral & (hi != hj),
        "strength:strong-positive": y > STRONG_EDGE_R,
        "strength:strong-negative": y < -STRONG_EDGE_R,
        "strength:weak": (y >= -STRONG_EDGE_R) & (y <= STRONG_EDGE_R),
    }
    network = brain.network.astype(str)
    for name in _network_order(network):
        in_i, in_j = network[i] == name, network[j] == name
        masks[f"network:{name}:intra"] = in_i & in_j
        masks[f"network:{name}:rest"] = in_i ^ in_j
    return masks


# ----------------------------------------------------------------- evaluation
def _check_edges(brain: Brain, i: np.ndarray, j: np.ndarray, y_pred: np.ndarray) -> tuple:
    i = np.asarray(i)
    j = np.asarray(j)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if i.ndim != 1 or i.shape != j.shape or y_pred.shape != i.shape:
        raise ValueError(
            f"i, j and y_pred must be 1-d arrays of equal length, got shapes {i.shape}, {j.shape}, {y_pred.shape}"
        )
    if i.size == 0:
        raise ValueError("evaluate: no edges given (i and j are empty)")
    if not (np.issubdtype(i.dtype, np.integer) and np.issubdtype(j.dtype, np.integer)):
        raise ValueError("evaluate: i and j must be integer region indices")
    if min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= brain.n_regions:
        raise ValueError(f"evaluate: region indices must lie in 0..{brain.n_regions - 1}")
    if np.any(i == j):
        raise ValueError("evaluate: an edge joins a region to itself (i == j); the diagonal is not scored")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError(f"evaluate: y_pred has {int((~np.isfinite(y_pred)).sum())} non-finite values")
    y_true = brain.targets(i, j).astype(np.float64)
    if not np.all(np.isfinite(y_true)):
        raise ValueError(f"evaluate: brain {brain.name!r} has non-finite targets Y on the given edges")
    return i.astype(np.int64), j.astype(np.int64), y_true, y_pred


def evaluate(
    brain: Brain,
    i: np.ndarray,
    j: np.ndarray,
    y_pred: np.ndarray,
    min_edges: int = MIN_STRATUM_EDGES,
) -> list[dict]:
    """All metrics of predictions on a set of edges, as tidy rows.

    Parameters
    ----------
    brain : Brain
        Supplies the true targets ``Y[i, j]``, distances, hemispheres and networks.
    i, j : (n_edges,) int arrays
        Edges scored, normally ``split.test_pairs()``.
    y_pred : (n_edges,) float array
        Predictions on the brain's target scale.
    min_edges : int
        Strata with fewer edges report ``value = NaN`` (with their ``n_edges``).

    Returns
    -------
    list of dict
        ``{"metric", "stratum", "value", "n_edges"}``: first the global metrics
        (``stratum="all"``), then stratified Pearson r in the order of `stratum_masks`.
        ``geodesic`` is NaN (with ``n_edges``) when the edges are not every pair of
        their regions, since no connectome matrix is then defined, and when it cannot
        be computed (a diverged prediction, e.g. of order 1e12); the other metrics are
        reported all the same. For ``target_scale="fisher_z"`` the geodesic compares
        ``tanh`` of the true and predicted values (correlation matrices).
    """
    i, j, y_true, y_pred = _check_edges(brain, i, j, y_pred)
    n = int(i.size)
    rows = [
        {"metric": "pearson", "stratum": "all", "value": pearson_r(y_true, y_pred), "n_edges": n},
        {"metric": "spearman", "stratum": "all", "value": spearman_rho(y_true, y_pred), "n_edges": n},
        {"metric": "r2", "stratum": "all", "value": r2(y_true, y_pred), "n_edges": n},
        {"metric": "mse", "stratum": "all", "value": mse(y_true, y_pred), "n_edges": n},
        {"metric": "mae", "stratum": "all", "value": mae(y_true, y_pred), "n_edges": n},
    ]
    geodesic = _evaluate_geodesic(brain, i, j, y_true, y_pred)
    rows.append({"metric": "geodesic", "stratum": "all", "value": geodesic, "n_edges": n})
    for stratum, mask in stratum_masks(brain, i, j).items():
        count = int(mask.sum())
        value = pearson_r(y_true[mask], y_pred[mask]) if count >= min_edges else float("nan")
        rows.append({"metric": "pearson", "stratum": stratum, "value": value, "n_edges": count})
    return rows


# ---------------------------------------------------------------- aggregation
def summarize(rows: pd.DataFrame | Sequence[dict], by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean ± SD of metric rows over splits, as in the paper's tables.

    Parameters
    ----------
    rows : DataFrame or list of dict
        Metric rows (``metric``, ``stratum``, ``value``, ...) plus any label columns
        (e.g. ``model``, ``kind``, ``null``), one row per split and metric.
    by : sequence of str
        Label columns to group by in addition to ``metric`` and ``stratum``.

    Returns
    -------
    DataFrame
        One row per group with ``mean`` and ``sd`` (sample SD, ddof=1) of the non-NaN
        values, ``n`` (values used), ``n_nan`` (NaN values skipped) and
        ``mean_edges`` (mean ``n_edges`` when present).
    """
    df = pd.DataFrame(rows).copy()
    keys = [*by, "metric", "stratum"]
    missing = [c for c in [*keys, "value"] if c not in df.columns]
    if missing:
        raise ValueError(f"summarize: rows lack columns {missing}")
    df["value"] = df["value"].astype(float)
    grouped = df.groupby(keys, sort=False, dropna=False)
    out = grouped["value"].agg(mean="mean", sd=lambda v: v.std(ddof=1), n="count", n_nan=lambda v: int(v.isna().sum()))
    if "n_edges" in df.columns:
        out["mean_edges"] = grouped["n_edges"].mean()
    return out.reset_index()
