"""Null families behind one interface, and the CGE-matched selection of Algorithm 1.

``generate_nulls`` composes three public steps:

1. `draw_nulls` — ``n`` nulls of one family, every random draw made up front from
   ``numpy.random.default_rng(seed)`` (so nothing depends on batching or threads);
2. `score_nulls` — each null's binned CGE–distance curve, its six curve parameters
   (``SA_lambda``, ``SA_inf``, ``a1``–``a4``, see `spatiomol.nulls.cge`) and its
   reassignment ``cost``; each quantity z-scored with the mean and standard deviation
   (``ddof=1``) across the scored nulls, the true brain's values (cost 0) with the same
   mean and SD; error ``e_i = Σ_p |z(p_i) − z(p_true)|``;
3. `select_nulls` — with ``cge_match`` (Algorithm 1): the ``top`` lowest-error nulls
   (ties by draw order) among those moving at least ``min_moved`` of the regions, never
   the identity nor a repeat; without: the first ``top`` draws.

A quantity with zero spread across the nulls carries no information and is left out of
``e_i`` (listed in ``metadata["constant_quantities"]``).

Families (``method``, `NULL_METHODS`)
-------------------------------------
``"cge"``        cortical spins with Váša assignment + non-cortical nulls (``subcortex``),
                 CGE from the genes; CGE-matched by default.
``"pca-cge"``    the same nulls, CGE from the PCA scores of ``X`` keeping
                 ``pca_variance`` (default 95 %) of its variance; CGE-matched by default.
``"hungarian"``  cortical spins with the optimal one-to-one (Hungarian) assignment +
                 non-cortical nulls (``subcortex``); not matched by default.
``"moran"``      Moran spectral randomisation of all regions at once (cortex, subcortex,
                 cerebellum) on inverse-distance weights, one sign draw shared by all
                 genes (`spatiomol.nulls.spectral`); not matched by default.
``"variogram"``  variogram-matched surrogates (Burt et al. 2020) of the principal-component
                 scores of ``X`` (``pca_variance``), orthogonalised so that the gene–gene
                 covariance is kept (`spatiomol.nulls.variogram`); not matched by default.
``"random"``     naive nulls: uniform permutations within each structure class, no
                 rotation (Table 3's "permuted"). Their errors are reported, but they are
                 *not* selected: a naive null chosen for a realistic CGE curve would no
                 longer be naive. Their cost is Σ‖C[j] − C[π(j)]‖ over cortex in mm.

Any family may be CGE-matched or not (``cge_match``); the defaults above
(`CGE_MATCH_DEFAULT`) keep ``"cge"`` and ``"random"`` as they were and leave the newer
families as the libraries they reproduce use them, until the calibration benchmark
decides. Families that replace expression rows (``moran``, ``variogram``, spins with
``subcortex="moran"``) score the nulls from their own expression; when they are not
matched, only the kept nulls are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from spatiomol.data.brain import Brain
from spatiomol.hashing import expression_sha256
from spatiomol.nulls import cge as cge_module
from spatiomol.nulls import spins as spin_module
from spatiomol.nulls.defaults import NULL_DEFAULTS, SUBCORTEX_DEFAULT
from spatiomol.nulls.nullset import FORMAT_VERSION, NullSet
from spatiomol.nulls.spectral import MoranPlan, plan_moran
from spatiomol.nulls.variogram import PCAVariogramPlan, plan_pca_variogram

#: every null family `generate_nulls` (and the config's ``nulls.method``) accepts
NULL_METHODS = ("cge", "pca-cge", "random", "hungarian", "moran", "variogram")
METHODS = NULL_METHODS  # the earlier name
#: non-cortical nulls of the spin families
SUBCORTEX_NULLS = spin_module.SUBCORTEX_NULLS
#: whether a family goes through the CGE-matched selection when ``cge_match`` is None
CGE_MATCH_DEFAULT = {
    "cge": True,
    "pca-cge": True,
    "random": False,
    "hungarian": False,
    "moran": False,
    "variogram": False,
}
_SPIN_ASSIGNMENT = {"cge": "vasa", "pca-cge": "vasa", "hungarian": "hungarian"}
QUANTITIES = (*cge_module.CURVE_PARAMETERS, "cost")
#: default floor on the fraction of regions a selected null must move (see generate_nulls)
MIN_MOVED = NULL_DEFAULTS["min_moved"]

__all__ = [
    "CGE_MATCH_DEFAULT",
    "FORMAT_VERSION",
    "METHODS",
    "MIN_MOVED",
    "NULL_METHODS",
    "QUANTITIES",
    "SUBCORTEX_NULLS",
    "NullDraws",
    "NullScores",
    "NullSet",
    "draw_nulls",
    "generate_nulls",
    "moved_fraction",
    "score_nulls",
    "select_nulls",
    "standardized_errors",
]


# ------------------------------------------------------------------- selection
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


def moved_fraction(perms: np.ndarray) -> np.ndarray:
    """(n,) fraction of regions that receive another region's expression under each null."""
    perms = np.atleast_2d(perms)
    return (perms != np.arange(perms.shape[1])).mean(axis=1)


def _rank(errors: np.ndarray, keys: list[bytes], identity: np.ndarray, top: int, eligible: np.ndarray) -> np.ndarray:
    """Positions of the ``top`` lowest-error, distinct, non-identity, eligible nulls."""
    chosen, seen = [], set()
    for k in np.argsort(errors, kind="stable"):
        if not eligible[k] or keys[k] in seen or identity[k]:
            continue
        seen.add(keys[k])
        chosen.append(k)
        if len(chosen) == top:
            break
    return np.array(chosen, dtype=np.int64)


# ------------------------------------------------------------------------ draw
@dataclass(frozen=True, eq=False)
class NullDraws:
    """``n`` nulls of one brain drawn by one family, before scoring.

    Attributes
    ----------
    method : str
        The family (`NULL_METHODS`).
    permutations : (n, r) int64 array
        Null ``k`` gives region ``i`` the expression of region ``permutations[k, i]``; the
        identity at ``replaced``.
    costs : (n,) float array
        Reassignment cost of each null (cortical assignment cost of spins, cortical
        displacement in mm of naive nulls, 0 for families without one).
    replaced : (q,) int64 array
        Regions whose expression rows are replaced by ``sampler`` (empty: a pure
        permutation family).
    sampler : MoranPlan, PCAVariogramPlan or None
        Makes the replaced rows: ``sampler.rows(X, draws)`` → (len(draws), q, g).
    region_groups : dict
        How regions were grouped (for the metadata).
    settings : dict
        Family settings recorded in the metadata (``subcortex``, ``assignment``, ...).
    """

    method: str
    permutations: np.ndarray
    costs: np.ndarray
    replaced: np.ndarray
    sampler: MoranPlan | PCAVariogramPlan | None
    region_groups: dict
    settings: dict

    @property
    def n(self) -> int:
        return self.permutations.shape[0]

    def replaced_rows(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), q, g) new expression of the `replaced` regions (q may be 0)."""
        draws = np.asarray(draws, dtype=np.int64)
        if self.sampler is None:
            return np.zeros((draws.size, 0, X.shape[1]))
        return self.sampler.rows(X, draws)

    def expression(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), r, g) expression of nulls ``draws`` built from the true ``X``."""
        draws = np.asarray(draws, dtype=np.int64)
        if self.replaced.size == X.shape[0]:  # every row replaced (moran, variogram)
            rows = self.replaced_rows(X, draws)
            order = np.argsort(self.replaced)
            # already in region order for a single region group: skip a copy of the whole batch
            return rows if np.array_equal(order, np.arange(order.size)) else rows[:, order]
        out = np.asarray(X)[self.permutations[draws]]
        if self.replaced.size:
            out[:, self.replaced] = self.replaced_rows(X, draws)
        return out

    def moved_fraction(self) -> np.ndarray:
        """(n,) fraction of regions whose expression is not their own (replaced rows count as moved)."""
        moved = self.permutations != np.arange(self.permutations.shape[1])
        moved[:, self.replaced] = True
        return moved.mean(axis=1)

    def keys(self) -> list[bytes]:
        """One byte key per null; equal keys mean equal nulls."""
        extra = self.sampler.keys(np.arange(self.n)) if self.sampler is not None else [b""] * self.n
        return [p.tobytes() + e for p, e in zip(self.permutations, extra)]

    def identity(self) -> np.ndarray:
        """(n,) True where the null is the true expression."""
        same = (self.permutations == np.arange(self.permutations.shape[1])).all(axis=1)
        if self.sampler is not None:
            same &= self.sampler.identity(np.arange(self.n))
        return same


def _check_expression(brain: Brain, method: str) -> None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(brain.X, dtype=np.float64)).all(axis=1))
    if bad.size:
        names = ", ".join(str(brain.labels[k]) for k in bad[:10])
        raise ValueError(
            f"method {method!r}: brain {brain.name!r} expression (X): rows {bad[:10].tolist()} ({names}; "
            f"{bad.size} in all) contain NaN/inf expression; every null family needs complete rows: impute "
            "or drop them first (spatiomol.data.impute)"
        )


def _validate(brain: Brain, n: int, top: int, method: str, bin_mm: float) -> None:
    if method not in NULL_METHODS:
        raise ValueError(f"method must be one of {NULL_METHODS}, got {method!r}")
    if int(n) != n or n < 2:
        raise ValueError(f"n (number of nulls drawn) must be an integer >= 2, got {n!r}")
    if int(top) != top or not 1 <= top <= n:
        raise ValueError(f"top must be an integer in [1, n={n}], got {top!r}")
    if not bin_mm > 0:
        raise ValueError(f"bin_mm must be positive (mm), got {bin_mm!r}")
    if brain.n_regions < 4:
        raise ValueError(f"brain {brain.name!r} has {brain.n_regions} regions; nulls need at least 4")
    bad = sorted(set(brain.hemisphere.astype(str)) - {"L", "R", "B"})
    if bad:
        raise ValueError(f"brain {brain.name!r}: regions.hemisphere has values {bad}; expected L, R or B")


def draw_nulls(
    brain: Brain,
    n: int = NULL_DEFAULTS["n"],
    seed: int = NULL_DEFAULTS["seed"],
    method: str = NULL_DEFAULTS["method"],
    *,
    subcortex: str = SUBCORTEX_DEFAULT,
    pca_variance: float = 0.95,
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> NullDraws:
    """Draw ``n`` nulls of ``brain`` with one family.

    Parameters
    ----------
    brain : Brain
        Expression without NaN rows; coordinates in mm.
    n : int
        Nulls drawn.
    seed : int
        Seed of the ``numpy.random.Generator`` that makes every draw, up front.
    method : str, one of `NULL_METHODS`
    subcortex : {"shuffle", "moran"}
        Non-cortical nulls of the spin families (see `spatiomol.nulls.spins`); ignored by
        the others (``moran`` and ``variogram`` treat all regions alike, ``random``
        shuffles within each structure class).
    pca_variance : float in (0, 1]
        Variance of ``X`` kept by the principal components of ``"variogram"``.
    batch_size : int
        Spins assigned together (bounds temporaries only).
    n_jobs : int or None
        Threads of the compiled loops (None: every core this process may use).

    Returns
    -------
    NullDraws
    """
    if method not in NULL_METHODS:
        raise ValueError(f"method must be one of {NULL_METHODS}, got {method!r}")
    if subcortex not in SUBCORTEX_NULLS:
        raise ValueError(f"subcortex must be one of {SUBCORTEX_NULLS}, got {subcortex!r}")
    _check_expression(brain, method)
    n = int(n)
    rng = np.random.default_rng(seed)
    r = brain.n_regions
    identity = np.tile(np.arange(r, dtype=np.int64), (n, 1))
    if method == "moran":
        plan = plan_moran(brain.coords, [np.arange(r)], n, rng, brain.labels, what="method 'moran'")
        return NullDraws(method, identity, np.zeros(n), plan.regions, plan, {"moran_groups": 1}, {})
    if method == "variogram":
        plan = plan_pca_variogram(brain.X, brain.distances, n, rng, pca_variance)
        settings = {
            "pca_variance": float(pca_variance),
            "pca_components": int(plan.components.shape[0]),
            "smoothing_deltas": plan.deltas.tolist(),
        }
        return NullDraws(method, identity, np.zeros(n), plan.regions, plan, {}, settings)
    if method == "random":
        plan = spin_module.plan_random(brain, n, rng)
        make_batch = spin_module.random_batch
        summary = {"structure_classes": [[str(brain.labels[k]) for k in c] for c in plan.classes]}
        settings: dict[str, Any] = {}
        sampler = None
    else:
        spin_module.check_spin_hemispheres(brain, method)
        plan = spin_module.plan_spins(brain, n, rng, assignment=_SPIN_ASSIGNMENT[method], subcortex=subcortex)
        make_batch = spin_module.spin_batch
        summary = plan.groups.summary(brain.labels)
        settings = {"assignment": plan.assignment, "subcortex": subcortex}
        sampler = plan.replaced
        if sampler is not None:
            summary["moran_groups"] = [[str(brain.labels[k]) for k in g] for g in sampler.groups]
    perms = np.empty((n, r), dtype=np.int64)
    costs = np.empty(n)
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        perms[rows], costs[rows] = make_batch(plan, rows, r, n_jobs)
    replaced = sampler.regions if sampler is not None else np.zeros(0, dtype=np.int64)
    return NullDraws(method, perms, costs, replaced, sampler, summary, settings)


# ----------------------------------------------------------------------- score
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
    bin_mm: float = 5.0,
    pca_variance: float = 0.95,
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
    project = None
    if features == "pca":
        F = cge_module.pca_scores(X, pca_variance, what=what)
        if draws.replaced.size:
            pca = PCA(n_components=F.shape[1], svd_solver="full").fit(X)

            def project(new: np.ndarray) -> np.ndarray:
                return (new - pca.mean_) @ pca.components_.T
    else:
        F = X
    cge = cge_module.correlated_gene_expression(F, what=what)
    bins = cge_module.DistanceBins.from_distances(brain.distances, bin_mm)
    curves = np.empty((rows.size, bins.used.size))
    if draws.replaced.size == 0:
        for start in range(0, rows.size, batch_size):
            part = rows[start : start + batch_size]
            curves[start : start + part.size] = bins.null_curves(cge, draws.permutations[part], n_jobs)
    else:
        Z = _standardised_rows(F)
        step = min(batch_size, 64)
        for start in range(0, rows.size, step):
            part = rows[start : start + step]
            new = draws.replaced_rows(X, part)
            Z_new = _standardised_rows(project(new) if project else new)  # (m, q, features)
            m, q = Z_new.shape[:2]
            new_corr = np.empty((m, q, brain.n_regions))
            if q < brain.n_regions:
                # with the true rows: one product, then each null's permutation of the columns
                with_true = (Z_new.reshape(m * q, -1) @ Z.T).reshape(m, q, -1)
                new_corr[:] = np.take_along_axis(with_true, draws.permutations[part][:, None, :], axis=2)
            for b in range(m):
                new_corr[b][:, draws.replaced] = Z_new[b] @ Z_new[b].T
            curves[start : start + part.size] = bins.replaced_curves(
                cge, draws.permutations[part], draws.replaced, new_corr, n_jobs
            )
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


# ---------------------------------------------------------------------- select
def select_nulls(
    draws: NullDraws,
    scores: NullScores,
    top: int = NULL_DEFAULTS["top"],
    *,
    cge_match: bool = True,
    min_moved: float = MIN_MOVED,
    dataset: str = "brain",
) -> np.ndarray:
    """Positions (into ``scores.draws``) of the kept nulls, best first.

    Parameters
    ----------
    draws : NullDraws
    scores : NullScores
    top : int
        Nulls kept.
    cge_match : bool
        True: Algorithm 1, the ``top`` lowest-error distinct non-identity nulls among those
        moving at least ``min_moved`` of the regions. False: the first ``top`` scored draws.
    min_moved : float in [0, 1]
        Floor on the fraction of regions a selected null moves (see `generate_nulls`).
    dataset : str
        Named in the error when too few nulls qualify.

    Returns
    -------
    (top,) int64 array
    """
    if not cge_match:
        return np.arange(top, dtype=np.int64)
    moved = draws.moved_fraction()[scores.draws]
    keys = draws.keys()
    identity = draws.identity()
    keep = _rank(
        scores.errors,
        [keys[k] for k in scores.draws],
        identity[scores.draws],
        top,
        eligible=moved >= min_moved,
    )
    if keep.size < top:
        raise ValueError(
            f"brain {dataset!r}: only {keep.size} distinct non-identity nulls moving at least "
            f"{min_moved:.0%} of regions among n={draws.n} draws, fewer than top={top}; "
            "draw more, lower min_moved or ask for fewer"
        )
    return keep


# -------------------------------------------------------------------- generate
def generate_nulls(
    brain: Brain,
    n: int = NULL_DEFAULTS["n"],
    top: int = NULL_DEFAULTS["top"],
    seed: int = NULL_DEFAULTS["seed"],
    method: str = NULL_DEFAULTS["method"],
    *,
    cge_match: bool | None = None,
    subcortex: str = SUBCORTEX_DEFAULT,
    bin_mm: float = 5.0,
    pca_variance: float = 0.95,
    min_moved: float = MIN_MOVED,
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> NullSet:
    """Draw ``n`` nulls of ``brain`` with one family and keep ``top`` of them.

    Parameters
    ----------
    brain : Brain
        Expression without NaN rows (impute first); coordinates in mm.
    n : int
        Nulls drawn (the paper: 10,000).
    top : int
        Nulls returned (the paper: 10).
    seed : int
        Seed of the ``numpy.random.Generator`` that makes every draw, all up front: the
        result does not depend on ``batch_size`` or ``n_jobs``.
    method : str, one of `NULL_METHODS`
        See the module docstring.
    cge_match : bool or None
        Select the nulls whose CGE–distance curve and cost best match the true brain's
        (Algorithm 1), or keep the first ``top`` draws. None: the family's default
        (`CGE_MATCH_DEFAULT`).
    subcortex : {"shuffle", "moran"}
        Non-cortical nulls of the spin families ``cge``, ``pca-cge`` and ``hungarian``.
    bin_mm : float
        Width of the distance bins, mm.
    pca_variance : float
        Variance kept by the PCA of ``"pca-cge"`` (the CGE) and of ``"variogram"`` (the
        maps made surrogate).
    min_moved : float in [0, 1]
        Only nulls that give at least this fraction of regions another region's
        expression may be selected (all nulls still define the z-scores). Algorithm 1
        scores the reassignment cost against the true brain's cost of 0, and a
        near-identity rotation also matches the CGE curve best, so without this floor
        the "best" nulls are rotations of a few degrees that leave most regions in place
        (measured on hcp-s100: a median of 12% of regions moved) and test nothing.
        0 reproduces Algorithm 1 exactly. Used only with ``cge_match``.
    batch_size : int
        Nulls held in memory together (their permutations and curves are kept anyway;
        the batch bounds only temporaries).
    n_jobs : int or None
        Threads of the compiled loops, passed explicitly to them (None: every core this
        process may use). No process-wide thread setting is changed.

    Returns
    -------
    NullSet
    """
    _validate(brain, n, top, method, bin_mm)
    if not 0.0 <= min_moved <= 1.0:
        raise ValueError(f"min_moved must be a fraction in [0, 1], got {min_moved!r}")
    n, top = int(n), int(top)
    match = CGE_MATCH_DEFAULT[method] if cge_match is None else bool(cge_match)
    draws = draw_nulls(
        brain, n, seed, method, subcortex=subcortex, pca_variance=pca_variance, batch_size=batch_size, n_jobs=n_jobs
    )
    # unselected nulls that replace rows are scored only where kept: their curves cost a product each
    rows = None if match or draws.replaced.size == 0 else np.arange(max(top, 2))
    scores = score_nulls(
        brain,
        draws,
        rows,
        features="pca" if method == "pca-cge" else "genes",
        bin_mm=bin_mm,
        pca_variance=pca_variance,
        batch_size=batch_size,
        n_jobs=n_jobs,
    )
    keep = select_nulls(draws, scores, top, cge_match=match, min_moved=min_moved, dataset=brain.name)
    return _null_set(
        brain, draws, scores, keep, n=n, top=top, seed=seed, match=match, min_moved=min_moved, pca_variance=pca_variance
    )


def _null_set(brain, draws, scores, keep, *, n, top, seed, match, min_moved, pca_variance) -> NullSet:
    """Assemble the `NullSet` of the kept positions ``keep`` (into ``scores.draws``)."""
    method = draws.method
    kept_draws = scores.draws[keep]
    moved = draws.moved_fraction()
    parameters = pd.DataFrame(scores.values[keep], columns=list(QUANTITIES))
    parameters["draw"] = kept_draws
    parameters["error"] = scores.errors[keep]
    parameters["moved_fraction"] = moved[kept_draws]
    worst = int(scores.draws[int(np.argmax(scores.errors))])
    identity = draws.identity()
    keys = draws.keys()
    distinct = {key for key, same in zip(keys, identity) if not same}
    bins = scores.bins
    uses_pca = method in ("pca-cge", "variogram")
    metadata = {
        "format_version": FORMAT_VERSION,
        "dataset": brain.name,
        "n": n,
        "top": top,
        "seed": int(seed),
        "method": method,
        "cge_match": match,
        "subcortex": draws.settings.get("subcortex"),
        "bin_mm": float(bins.width),
        "bin_edges_mm": bins.edges.tolist(),
        "pca_variance": float(pca_variance) if uses_pca else None,
        "min_moved": float(min_moved) if match else None,
        "n_eligible": int((moved >= min_moved).sum()),
        "pca_components": scores.pca_components if method == "pca-cge" else draws.settings.get("pca_components"),
        "labels": [str(x) for x in brain.labels],
        "n_genes": int(brain.n_genes),
        "genes": [str(g) for g in brain.genes] if draws.replaced.size else None,
        "expression_sha256": expression_sha256(brain.X),
        "region_groups": draws.region_groups,
        "family": draws.settings,
        "constant_quantities": [QUANTITIES[k] for k in scores.constant],
        "n_unique": len(distinct),
        "n_scored": int(scores.draws.size),
        "quantities": list(QUANTITIES),
        "fit": {
            "weights": "unweighted (each non-empty bin counts once)",
            "SA_inf_bounds": list(cge_module.SA_INF_BOUNDS),
            "SA_lambda_bounds_mm": [cge_module.SA_LAMBDA_MIN, cge_module.SA_LAMBDA_MAX],
            "cubic": "a1*d^3 + a2*d^2 + a3*d + a4",
        },
    }
    expression = worst_expression = None
    if draws.replaced.size:
        expression = draws.replaced_rows(brain.X, kept_draws)
        worst_expression = draws.replaced_rows(brain.X, np.array([worst]))[0]
    return NullSet(
        permutations=draws.permutations[kept_draws].copy(),
        errors=scores.errors[keep].copy(),
        parameters=parameters,
        costs=draws.costs[kept_draws].copy(),
        true_parameters={q: float(v) for q, v in zip(QUANTITIES, scores.true_values)},
        curves=scores.curves[keep].copy(),
        true_curve=scores.true_curve,
        bin_centres=bins.centres.copy(),
        all_parameters=scores.values,
        all_errors=scores.errors,
        worst_permutation=draws.permutations[worst].copy(),
        worst_curve=scores.curves[int(np.argmax(scores.errors))].copy(),
        metadata=metadata,
        replaced_regions=draws.replaced.copy(),
        expression=expression,
        worst_expression=worst_expression,
    )
