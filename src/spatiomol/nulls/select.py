"""Null families behind one interface, and the CGE-matched selection of Algorithm 1.

``generate_nulls`` composes three public steps:

1. `draw_nulls` (`spatiomol.nulls.draw`) — ``n`` nulls of one family, every random draw
   made up front from ``numpy.random.default_rng(seed)`` (so nothing depends on batching
   or threads); the families are listed there;
2. `score_nulls` (`spatiomol.nulls.score`) — each null's binned CGE–distance curve, its
   six curve parameters (``SA_lambda``, ``SA_inf``, ``a1``–``a4``, see
   `spatiomol.nulls.cge`) and its reassignment ``cost``; each quantity z-scored with the
   mean and standard deviation (``ddof=1``) across the scored nulls, the true brain's
   values (cost 0) with the same mean and SD; error ``e_i = Σ_p |z(p_i) − z(p_true)|``;
3. `select_nulls` (here) — with ``cge_match`` (Algorithm 1): the ``top`` lowest-error nulls
   (ties by draw order) among those moving at least ``min_moved`` of the regions, never
   the identity nor a repeat; without: the first ``top`` draws.

A quantity with zero spread across the nulls carries no information and is left out of
``e_i`` (listed in ``metadata["constant_quantities"]``).

Any family may be CGE-matched or not (``cge_match``); the defaults (`CGE_MATCH_DEFAULT`,
derived from ``NullFamily.cge_match_default`` in `spatiomol.nulls.families`)
keep ``"cge"`` and ``"random"`` as they were and leave the newer families as the
libraries they reproduce use them, until the calibration benchmark decides. ``"random"``
nulls are never matched by default: a naive null chosen for a realistic CGE curve would
no longer be naive. Families that replace expression rows (``moran``, ``variogram``,
spins with ``subcortex="moran"``) score the nulls from their own expression; when they
are not matched, only the kept nulls are scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain
from spatiomol.hashing import expression_sha256
from spatiomol.nulls import cge as cge_module
from spatiomol.nulls.defaults import NULL_DEFAULTS, NULL_TUNING_DEFAULTS, SUBCORTEX_DEFAULT
from spatiomol.nulls.draw import SUBCORTEX_NULLS, NullDraws, draw_nulls
from spatiomol.nulls.families import CGE_MATCH_DEFAULT, FAMILIES, NULL_METHODS
from spatiomol.nulls.nullset import FORMAT_VERSION, NullSet
from spatiomol.nulls.score import QUANTITIES, NullScores, score_nulls, standardized_errors

#: default floor on the fraction of regions a selected null must move (see generate_nulls)
MIN_MOVED = NULL_DEFAULTS["min_moved"]

# the names of the steps and of the stored result are also importable from here
__all__ = [
    "CGE_MATCH_DEFAULT",
    "FORMAT_VERSION",
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
def _validate(brain: Brain, n: int, top: int, method: str, bin_mm: float, min_moved: float) -> None:
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
    if not 0.0 <= min_moved <= 1.0:
        raise ValueError(f"min_moved must be a fraction in [0, 1], got {min_moved!r}")


def generate_nulls(
    brain: Brain,
    n: int = NULL_DEFAULTS["n"],
    top: int = NULL_DEFAULTS["top"],
    seed: int = NULL_DEFAULTS["seed"],
    method: str = NULL_DEFAULTS["method"],
    *,
    cge_match: bool | None = None,
    subcortex: str = SUBCORTEX_DEFAULT,
    bin_mm: float = NULL_TUNING_DEFAULTS["bin_mm"],
    pca_variance: float = NULL_TUNING_DEFAULTS["pca_variance"],
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
        See `spatiomol.nulls.draw`.
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
    _validate(brain, n, top, method, bin_mm, min_moved)
    n, top = int(n), int(top)
    spec = FAMILIES[method]
    match = spec.cge_match_default if cge_match is None else bool(cge_match)
    shared = {"pca_variance": pca_variance, "batch_size": batch_size, "n_jobs": n_jobs}
    draws = draw_nulls(brain, n, seed, method, subcortex=subcortex, **shared)
    # unselected nulls that replace rows are scored only where kept: their curves cost a product each
    rows = None if match or draws.replaced.size == 0 else np.arange(max(top, 2))
    scores = score_nulls(brain, draws, rows, features=spec.cge_features, bin_mm=bin_mm, **shared)
    keep = select_nulls(draws, scores, top, cge_match=match, min_moved=min_moved, dataset=brain.name)
    return _null_set(
        brain, draws, scores, keep, n=n, top=top, seed=seed, match=match, min_moved=min_moved, pca_variance=pca_variance
    )


def _null_set(brain, draws, scores, keep, *, n, top, seed, match, min_moved, pca_variance) -> NullSet:
    """Assemble the `NullSet` of the kept positions ``keep`` (into ``scores.draws``)."""
    kept_draws = scores.draws[keep]
    parameters = pd.DataFrame(scores.values[keep], columns=list(QUANTITIES))
    parameters["draw"] = kept_draws
    parameters["error"] = scores.errors[keep]
    parameters["moved_fraction"] = draws.moved_fraction()[kept_draws]
    worst = int(scores.draws[int(np.argmax(scores.errors))])
    metadata = _metadata(
        brain, draws, scores, n=n, top=top, seed=seed, match=match, min_moved=min_moved, pca_variance=pca_variance
    )
    expression = worst_expression = None
    if draws.replaced.size:
        expression = draws.replaced_rows(brain.X, kept_draws)
        worst_expression = draws.replaced_rows(brain.X, np.array([worst]))[0]
    bins = scores.bins
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


def _metadata(brain, draws, scores, *, n, top, seed, match, min_moved, pca_variance) -> dict:
    """The `NullSet.metadata` of nulls drawn as ``draws`` and scored as ``scores``."""
    method = draws.method
    moved = draws.moved_fraction()
    identity = draws.identity()
    keys = draws.keys()
    distinct = {key for key, same in zip(keys, identity) if not same}
    bins = scores.bins
    spec = FAMILIES[method]
    return {
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
        "pca_variance": float(pca_variance) if spec.uses_pca_variance else None,
        "min_moved": float(min_moved) if match else None,
        "n_eligible": int((moved >= min_moved).sum()),
        "pca_components": scores.pca_components if spec.cge_features == "pca" else draws.settings.get("pca_components"),
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
