"""CGE-matched null selection (Algorithm 1) and the `NullSet` it returns.

``generate_nulls`` draws ``n`` spatial nulls (or naive permutations), measures how far
each null's CGE–distance curve and reassignment cost are from the true brain's, and
keeps the ``top`` closest:

1. the six curve parameters (``SA_lambda``, ``SA_inf``, ``a1``–``a4``, see
   `spatiomol.nulls.cge`) of the true brain and of every null, plus each null's
   reassignment ``cost`` (the true brain's is 0: the identity assignment);
2. every parameter and the cost z-scored with the mean and standard deviation
   (``ddof=1``) across the ``n`` nulls — the true values with the same mean and SD;
3. ``e_i = Σ_p |z(p_i) − z(p_true)|`` over the seven quantities; nulls ranked by
   ascending ``e_i`` (ties by draw order).

The identity permutation and repeated permutations are never selected. A quantity with
zero spread across the nulls carries no information and is left out of ``e_i`` (listed
in ``metadata["constant_quantities"]``).

Methods
-------
``"cge"``      spins (Váša) + symmetric subcortical shuffles, CGE from the genes.
``"pca-cge"``  the same nulls, CGE from the PCA scores of ``X`` keeping
               ``pca_variance`` (default 95 %) of its variance.
``"random"``   naive nulls: uniform permutations within each structure class, no
               rotation (Table 3's "permuted"); their errors are reported, but they are
               *not* selected: the first ``top`` draws are returned, because a naive null
               chosen for a realistic CGE curve would no longer be naive. Their cost is
               Σ‖C[j] − C[π(j)]‖ over cortex in mm.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.data.brain import Brain
from spatiomol.hashing import expression_sha256
from spatiomol.nulls import cge as cge_module
from spatiomol.nulls import spins as spin_module

METHODS = ("cge", "pca-cge", "random")
QUANTITIES = (*cge_module.CURVE_PARAMETERS, "cost")
FORMAT_VERSION = 1
#: default floor on the fraction of regions a selected null must move (see generate_nulls)
MIN_MOVED = 0.9


@dataclass(frozen=True, eq=False)
class NullSet:
    """The selected null permutations of one brain and everything needed to reuse them.

    Attributes
    ----------
    permutations : (top, r) int64 array
        Null ``k`` gives region ``i`` the expression of region ``permutations[k, i]``
        (apply with `apply` or ``brain.permute_expression``). Best (lowest error) first.
    errors : (top,) float array
        Algorithm 1 error ``e_i`` (sum of absolute z-score differences), dimensionless.
    parameters : pandas.DataFrame, top rows
        ``SA_lambda`` (mm), ``SA_inf`` (r), ``a1`` (r/mm³), ``a2`` (r/mm²), ``a3`` (r/mm),
        ``a4`` (r), ``cost`` (unit-sphere chord length; mm for ``"random"``), plus
        ``draw`` (index of the null among the ``n`` drawn) and ``error``.
    costs : (top,) float array
        The ``cost`` column.
    true_parameters : dict
        The same quantities for the true brain (``cost`` = 0).
    curves : (top, n_bins) float array
        Binned mean CGE of each selected null (Pearson r).
    true_curve : (n_bins,) float array
    bin_centres : (n_bins,) float array, mm
        Centres of the non-empty distance bins.
    all_parameters : (n, 7) float array
        Every drawn null's quantities, columns as `QUANTITIES`.
    all_errors : (n,) float array
    worst_permutation : (r,) int64 array
        The highest-error null (for figures).
    worst_curve : (n_bins,) float array
    metadata : dict
        ``dataset``, ``n``, ``top``, ``seed``, ``method``, ``bin_mm``, ``pca_variance``,
        ``pca_components``, ``labels`` (region order), ``expression_sha256``,
        ``region_groups`` (pairings used), ``constant_quantities``, ``n_unique``
        (distinct non-identity permutations among the draws), ``format_version``.
    """

    permutations: np.ndarray
    errors: np.ndarray
    parameters: pd.DataFrame
    costs: np.ndarray
    true_parameters: dict[str, float]
    curves: np.ndarray
    true_curve: np.ndarray
    bin_centres: np.ndarray
    all_parameters: np.ndarray
    all_errors: np.ndarray
    worst_permutation: np.ndarray
    worst_curve: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- use
    @property
    def top(self) -> int:
        return self.permutations.shape[0]

    def check_brain(self, brain: Brain) -> None:
        """Raise ValueError unless ``brain`` has the regions (in order) these nulls were made for."""
        labels = [str(x) for x in brain.labels]
        if labels != list(self.metadata.get("labels", [])):
            raise ValueError(
                f"null set for dataset {self.metadata.get('dataset')!r} was generated for a different "
                f"region list than brain {brain.name!r} ({len(self.metadata.get('labels', []))} vs "
                f"{len(labels)} regions, or a different order)"
            )

    def apply(self, brain: Brain, k: int = 0) -> Brain:
        """The ``k``-th best null brain of ``brain`` (region labels must match)."""
        self.check_brain(brain)
        if not 0 <= k < self.top:
            raise ValueError(f"null index k={k} out of range: this set holds {self.top} nulls")
        note = (
            f"{self.metadata.get('method')} null {k} of {self.top} (draw {int(self.parameters['draw'].iloc[k])} "
            f"of n={self.metadata.get('n')}, seed={self.metadata.get('seed')}, error={self.errors[k]:.3f})"
        )
        return brain.permute_expression(self.permutations[k], note=note)

    # ------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (npz, no pickles) atomically: a temporary file, then ``os.replace``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "permutations": self.permutations.astype(np.int64),
            "errors": self.errors,
            "parameter_names": np.array(list(self.parameters.columns), dtype=str),
            "parameter_values": self.parameters.to_numpy(dtype=np.float64),
            "costs": self.costs,
            "true_parameter_names": np.array(list(self.true_parameters), dtype=str),
            "true_parameter_values": np.array(list(self.true_parameters.values()), dtype=np.float64),
            "curves": self.curves,
            "true_curve": self.true_curve,
            "bin_centres": self.bin_centres,
            "all_parameters": self.all_parameters,
            "all_errors": self.all_errors,
            "worst_permutation": self.worst_permutation.astype(np.int64),
            "worst_curve": self.worst_curve,
            "metadata_json": np.array(json.dumps(self.metadata)),
        }
        with atomic_path(path, suffix=".tmp.npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NullSet:
        """Read a file written by `save`; ValueError naming the file and field if it is not one."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"null set file {path} does not exist")
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception as err:  # zipfile / format errors
            raise ValueError(f"{path}: not a spatiomol null-set npz file ({err})") from err
        with archive:
            required = (
                "permutations",
                "errors",
                "parameter_names",
                "parameter_values",
                "costs",
                "true_parameter_names",
                "true_parameter_values",
                "curves",
                "true_curve",
                "bin_centres",
                "all_parameters",
                "all_errors",
                "worst_permutation",
                "worst_curve",
                "metadata_json",
            )
            missing = [k for k in required if k not in archive.files]
            if missing:
                raise ValueError(f"{path}: missing fields {missing}; expected a file written by NullSet.save")
            data = {k: archive[k] for k in required}
        metadata = json.loads(str(data["metadata_json"]))
        if metadata.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: field 'metadata.format_version' is {metadata.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        perms = data["permutations"]
        r = len(metadata.get("labels", []))
        if perms.ndim != 2 or perms.shape[1] != r:
            raise ValueError(f"{path}: field 'permutations' has shape {perms.shape}, expected (top, {r})")
        if not all(np.array_equal(np.sort(p), np.arange(r)) for p in perms):
            raise ValueError(f"{path}: field 'permutations' holds a row that is not a bijection of {r} regions")
        parameters = pd.DataFrame(data["parameter_values"], columns=[str(c) for c in data["parameter_names"]])
        parameters["draw"] = parameters["draw"].astype(np.int64)
        true_parameters = {
            str(k): float(v) for k, v in zip(data["true_parameter_names"], data["true_parameter_values"])
        }
        return cls(
            permutations=perms.astype(np.int64),
            errors=data["errors"],
            parameters=parameters,
            costs=data["costs"],
            true_parameters=true_parameters,
            curves=data["curves"],
            true_curve=data["true_curve"],
            bin_centres=data["bin_centres"],
            all_parameters=data["all_parameters"],
            all_errors=data["all_errors"],
            worst_permutation=data["worst_permutation"].astype(np.int64),
            worst_curve=data["worst_curve"],
            metadata=metadata,
        )


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


def _rank(errors: np.ndarray, perms: np.ndarray, top: int, eligible: np.ndarray) -> np.ndarray:
    """Indices of the ``top`` lowest-error, distinct, non-identity, eligible permutations."""
    identity = np.arange(perms.shape[1])
    chosen, seen = [], set()
    for k in np.argsort(errors, kind="stable"):
        key = perms[k].tobytes()
        if not eligible[k] or key in seen or np.array_equal(perms[k], identity):
            continue
        seen.add(key)
        chosen.append(k)
        if len(chosen) == top:
            break
    return np.array(chosen, dtype=np.int64)


def _validate(brain: Brain, n: int, top: int, method: str, bin_mm: float) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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


def generate_nulls(
    brain: Brain,
    n: int = 10000,
    top: int = 10,
    seed: int = 0,
    method: str = "cge",
    *,
    bin_mm: float = 5.0,
    pca_variance: float = 0.95,
    min_moved: float = MIN_MOVED,
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> NullSet:
    """Draw ``n`` nulls of ``brain`` and keep the ``top`` that best match its CGE–distance curve.

    Parameters
    ----------
    brain : Brain
        Expression without NaN rows (impute first); coordinates in mm.
    n : int
        Nulls drawn (the paper: 10,000).
    top : int
        Nulls returned (the paper: 10).
    seed : int
        Seed of the ``numpy.random.Generator`` that draws every rotation and shuffle, all
        up front: the result does not depend on ``batch_size`` or ``n_jobs``.
    method : {"cge", "pca-cge", "random"}
        See the module docstring.
    bin_mm : float
        Width of the distance bins, mm.
    pca_variance : float
        Variance kept by the PCA of ``"pca-cge"``.
    min_moved : float in [0, 1]
        Only nulls that give at least this fraction of regions another region's
        expression may be selected (all nulls still define the z-scores). Algorithm 1
        scores the reassignment cost against the true brain's cost of 0, and a
        near-identity rotation also matches the CGE curve best, so without this floor
        the "best" nulls are rotations of a few degrees that leave most regions in place
        (measured on hcp-s100: a median of 12% of regions moved) and test nothing.
        0 reproduces Algorithm 1 exactly.
    batch_size : int
        Nulls held in memory together (their permutations and curves are kept anyway;
        the batch bounds only temporaries).
    n_jobs : int or None
        Threads of the compiled loops (numba); None keeps numba's default (all cores).

    Returns
    -------
    NullSet
    """
    _validate(brain, n, top, method, bin_mm)
    if not 0.0 <= min_moved <= 1.0:
        raise ValueError(f"min_moved must be a fraction in [0, 1], got {min_moved!r}")
    n, top = int(n), int(top)
    what = f"brain {brain.name!r} expression (X)"
    if method == "pca-cge":
        features = cge_module.pca_scores(brain.X, pca_variance, what=what)
    else:
        features = brain.X
    cge = cge_module.correlated_gene_expression(features, what=what)
    bins = cge_module.DistanceBins.from_distances(brain.distances, bin_mm)
    rng = np.random.default_rng(seed)
    r = brain.n_regions
    if method == "random":
        plan = spin_module.plan_random(brain, n, rng)
        make_batch = spin_module.random_batch
        groups_summary = {"structure_classes": [[str(brain.labels[k]) for k in c] for c in plan.classes]}
    else:
        plan = spin_module.plan_spins(brain, n, rng)
        make_batch = spin_module.spin_batch
        groups_summary = plan.groups.summary(brain.labels)

    perms = np.empty((n, r), dtype=np.int64)
    costs = np.empty(n)
    curves = np.empty((n, bins.used.size))

    threads_before = numba.get_num_threads()
    if n_jobs is not None:
        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(start + batch_size, n))
            perms[rows], costs[rows] = make_batch(plan, rows, r)
            curves[rows] = bins.null_curves(cge, perms[rows])
    finally:
        numba.set_num_threads(threads_before)

    null_values = np.column_stack([cge_module.fit_curves(bins.centres, curves), costs])
    true_curve = bins.curve(cge)
    true_values = np.append(cge_module.fit_curves(bins.centres, true_curve[None])[0], 0.0)
    errors, constant = standardized_errors(null_values, true_values)
    moved = moved_fraction(perms)
    if method == "random":
        keep = np.arange(top)
    else:
        keep = _rank(errors, perms, top, eligible=moved >= min_moved)
        if keep.size < top:
            raise ValueError(
                f"brain {brain.name!r}: only {keep.size} distinct non-identity nulls moving at least "
                f"{min_moved:.0%} of regions among n={n} draws, fewer than top={top}; "
                "draw more, lower min_moved or ask for fewer"
            )
    worst = int(np.argmax(errors))
    parameters = pd.DataFrame(null_values[keep], columns=list(QUANTITIES))
    parameters["draw"] = keep
    parameters["error"] = errors[keep]
    parameters["moved_fraction"] = moved[keep]
    identity = np.arange(r)
    distinct = {p.tobytes() for p in perms if not np.array_equal(p, identity)}
    metadata = {
        "format_version": FORMAT_VERSION,
        "dataset": brain.name,
        "n": n,
        "top": top,
        "seed": int(seed),
        "method": method,
        "bin_mm": float(bin_mm),
        "bin_edges_mm": bins.edges.tolist(),
        "pca_variance": float(pca_variance) if method == "pca-cge" else None,
        "min_moved": float(min_moved) if method != "random" else None,
        "n_eligible": int((moved >= min_moved).sum()),
        "pca_components": int(features.shape[1]) if method == "pca-cge" else None,
        "labels": [str(x) for x in brain.labels],
        "expression_sha256": expression_sha256(brain.X),
        "region_groups": groups_summary,
        "constant_quantities": [QUANTITIES[k] for k in constant],
        "n_unique": len(distinct),
        "quantities": list(QUANTITIES),
        "fit": {
            "weights": "unweighted (each non-empty bin counts once)",
            "SA_inf_bounds": list(cge_module.SA_INF_BOUNDS),
            "SA_lambda_bounds_mm": [cge_module.SA_LAMBDA_MIN, cge_module.SA_LAMBDA_MAX],
            "cubic": "a1*d^3 + a2*d^2 + a3*d + a4",
        },
    }
    return NullSet(
        permutations=perms[keep].copy(),
        errors=errors[keep].copy(),
        parameters=parameters,
        costs=costs[keep].copy(),
        true_parameters={q: float(v) for q, v in zip(QUANTITIES, true_values)},
        curves=curves[keep].copy(),
        true_curve=true_curve,
        bin_centres=bins.centres.copy(),
        all_parameters=null_values,
        all_errors=errors,
        worst_permutation=perms[worst].copy(),
        worst_curve=curves[worst].copy(),
        metadata=metadata,
    )
