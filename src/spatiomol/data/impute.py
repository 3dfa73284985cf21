"""Regions with no expression: drop them, or fill them by mirror-and-interpolate.

The Allen Human Brain Atlas sampled the right hemisphere of only two of six donors, so
fine parcellations have regions with no tissue sample at all (Schaefer-400: 49 regions).
Such regions arrive as all-NaN rows of ``brain.X``. Two remedies are offered:

``"drop"``
    Remove the regions (rows of ``X``, rows and columns of ``Y`` and of the subject
    stack). The dropped labels are listed in ``provenance["imputation"]``.

``"mirror-interpolate"`` (the paper's choice, after abagen)
    For each region ``m`` with no expression:

    1. *Mirror.* Its contralateral homologue ``h`` is the region of the other hemisphere
       and the same structure class whose centroid is nearest to ``m``'s centroid
       reflected across the midline (``x → −x``). Position, not label, defines the
       homologue, because Schaefer parcel numbers do not correspond across hemispheres
       (``LH_SomMot_17`` is not the mirror image of ``RH_SomMot_17``). When ``h`` has
       measured expression, ``X[m] = X[h]`` exactly.
    2. *Interpolate.* Otherwise ``X[m]`` is the inverse-distance-weighted mean of the
       ``n_neighbors`` (default 10) nearest regions *with measured expression* in the
       same hemisphere and structure class: weights ``w_k = (1 / d_k) / Σ_l (1 / d_l)``
       with ``d`` the Euclidean centroid distance in mm. A neighbour at distance 0 takes
       all the weight (shared equally among such neighbours), as in scikit-learn's
       ``KNeighborsRegressor(weights="distance")``. Fewer than ``n_neighbors`` candidates
       → all of them are used.

    Only measured regions serve as sources (no chains of imputed values), so the result
    does not depend on the order in which missing regions are visited. Regions on the
    midline (hemisphere ``"B"``) have no homologue and are interpolated from ``B``
    regions of their structure class.

Every filled region is recorded in ``provenance["imputation"]["regions"]`` with how it
was filled, its source labels and their weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spatiomol.data.brain import Brain

MISSING_METHODS = ("mirror-interpolate", "drop", "keep")
_CONTRALATERAL = {"L": "R", "R": "L"}


def measured_and_missing(brain: Brain) -> tuple[np.ndarray, np.ndarray]:
    """Split regions into those with measured expression and those with none.

    Returns
    -------
    measured, missing : int arrays
        Region indices whose expression row is all finite, respectively all NaN.

    Raises
    ------
    ValueError
        When a row is partly NaN (neither measured nor missing): imputation works on
        whole regions, never on single genes.
    """
    finite = np.isfinite(brain.X)
    measured = np.flatnonzero(finite.all(axis=1))
    missing = np.flatnonzero(np.isnan(brain.X).all(axis=1))
    partial = np.setdiff1d(np.arange(brain.n_regions), np.union1d(measured, missing))
    if partial.size:
        labels = [str(brain.labels[k]) for k in partial[:5]]
        raise ValueError(
            f"{brain.name}: expression rows must be all finite (measured) or all NaN "
            f"(no samples); regions {labels} ({partial.size} in all) are partly non-finite"
        )
    return measured, missing


def find_homologue(brain: Brain, region: int) -> tuple[int | None, float]:
    """Contralateral homologue of one region, by reflected position.

    Parameters
    ----------
    brain : Brain
    region : int
        Region index.

    Returns
    -------
    homologue : int or None
        Index of the region of the opposite hemisphere and same structure class whose
        centroid is nearest to ``region``'s centroid with ``x`` negated; ``None`` for a
        midline region or when the other hemisphere has no region of that class.
    distance_mm : float
        Distance from the reflected centroid to the homologue's centroid (NaN if none).
    """
    other = _CONTRALATERAL.get(str(brain.hemisphere[region]))
    if other is None:
        return None, float("nan")
    candidates = np.flatnonzero((brain.hemisphere == other) & (brain.structure == brain.structure[region]))
    if candidates.size == 0:
        return None, float("nan")
    reflected = brain.coords[region] * np.array([-1.0, 1.0, 1.0])
    d = np.linalg.norm(brain.coords[candidates] - reflected, axis=1)
    k = int(np.argmin(d))
    return int(candidates[k]), float(d[k])


def inverse_distance_weights(distances_mm: np.ndarray) -> np.ndarray:
    """Normalised inverse-distance weights ``(1/d) / Σ(1/d)``.

    Parameters
    ----------
    distances_mm : (k,) float array
        Non-negative distances in mm.

    Returns
    -------
    (k,) float array summing to 1. If some distances are 0, those neighbours share the
    weight equally and the others get 0.
    """
    d = np.asarray(distances_mm, dtype=np.float64)
    zero = d == 0.0
    if zero.any():
        return zero / zero.sum()
    w = 1.0 / d
    return w / w.sum()


def mirror_interpolate(brain: Brain, n_neighbors: int = 10) -> Brain:
    """Fill regions without expression by mirror copy, else inverse-distance interpolation.

    See the module docstring for the exact rule.

    Parameters
    ----------
    brain : Brain
        ``X`` (n_regions × n_genes) with all-NaN rows for regions without samples.
    n_neighbors : int
        Number of nearest measured regions (same hemisphere and structure class) that
        the interpolation averages.

    Returns
    -------
    Brain
        Complete ``X``; ``provenance["imputation"]`` lists every filled region with
        ``method`` (``"mirror"`` or ``"interpolate"``), ``sources`` (labels) and
        ``weights``, plus ``homologue_distance_mm`` for mirror copies.
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a positive integer, got {n_neighbors}")
    measured, missing = measured_and_missing(brain)
    has_data = np.zeros(brain.n_regions, dtype=bool)
    has_data[measured] = True
    X = brain.X.copy()
    labels = brain.labels
    records: list[dict[str, Any]] = []
    for m in missing:
        homologue, offset_mm = find_homologue(brain, m)
        if homologue is not None and has_data[homologue]:
            X[m] = brain.X[homologue]
            records.append(
                {
                    "label": str(labels[m]),
                    "method": "mirror",
                    "sources": [str(labels[homologue])],
                    "weights": [1.0],
                    "homologue_distance_mm": offset_mm,
                }
            )
            continue
        pool = np.flatnonzero(
            has_data & (brain.hemisphere == brain.hemisphere[m]) & (brain.structure == brain.structure[m])
        )
        if pool.size == 0:
            raise ValueError(
                f"{brain.name}: region {labels[m]!r} has no expression, its homologue has none, and no "
                f"region of hemisphere {brain.hemisphere[m]!r} and structure {brain.structure[m]!r} has any"
            )
        d = np.linalg.norm(brain.coords[pool] - brain.coords[m], axis=1)
        nearest = np.argsort(d, kind="stable")[:n_neighbors]
        weights = inverse_distance_weights(d[nearest])
        X[m] = weights @ brain.X[pool[nearest]]
        records.append(
            {
                "label": str(labels[m]),
                "method": "interpolate",
                "sources": [str(labels[k]) for k in pool[nearest]],
                "weights": [float(w) for w in weights],
                "distances_mm": [float(x) for x in d[nearest]],
            }
        )
    report = {
        "method": "mirror-interpolate",
        "n_neighbors": int(n_neighbors),
        "homologue": "contralateral region of the same structure class nearest to the centroid reflected across x = 0",
        "weighting": "inverse distance 1/d (mm), normalised to sum 1; measured regions only",
        "n_missing": int(missing.size),
        "n_mirror": sum(r["method"] == "mirror" for r in records),
        "n_interpolate": sum(r["method"] == "interpolate" for r in records),
        "regions": records,
    }
    return brain.replace(X=X).with_note("imputation", report)


def drop_missing(brain: Brain) -> Brain:
    """Remove regions without expression (rows/columns of ``X``, ``Y`` and ``subjects``).

    Returns
    -------
    Brain
        With ``provenance["imputation"] = {"method": "drop", "dropped": [labels], ...}``.
    """
    measured, missing = measured_and_missing(brain)
    report = {
        "method": "drop",
        "n_missing": int(missing.size),
        "dropped": [str(brain.labels[k]) for k in missing],
        "regions": [],
    }
    return brain.subset_regions(measured).with_note("imputation", report)


def fill_missing(brain: Brain, method: str = "mirror-interpolate", n_neighbors: int = 10) -> Brain:
    """Apply one remedy for regions without expression.

    Parameters
    ----------
    brain : Brain
    method : {"mirror-interpolate", "drop", "keep"}
        ``"keep"`` leaves the NaN rows in place (models cannot use them) and records them.
    n_neighbors : int
        Used by ``"mirror-interpolate"``.

    Returns
    -------
    Brain with ``provenance["imputation"]`` set.
    """
    if method == "mirror-interpolate":
        return mirror_interpolate(brain, n_neighbors=n_neighbors)
    if method == "drop":
        return drop_missing(brain)
    if method == "keep":
        _, missing = measured_and_missing(brain)
        report = {
            "method": "keep",
            "n_missing": int(missing.size),
            "missing": [str(brain.labels[k]) for k in missing],
            "regions": [],
        }
        return brain.with_note("imputation", report)
    raise ValueError(f"missing must be one of {MISSING_METHODS}, got {method!r}")
