"""Hemispheric homology: which left and right regions are each other's mirror image.

One rule, used by the spin nulls (`spatiomol.nulls.spins`, which keep homologous pairs
together) and the anatomy baseline (`spatiomol.models.anatomy`, whose pair features say
whether two regions are homologues).
"""

from __future__ import annotations

import re

import numpy as np
from scipy.optimize import linear_sum_assignment

from spatiomol.data.brain import Brain

#: reflection through the midsagittal plane (x → −x), for 3-vectors and rotation matrices
MIDLINE_REFLECTION = np.diag([-1.0, 1.0, 1.0])
_HEMISPHERE_TOKENS = {"L": ("l", "lh", "left"), "R": ("r", "rh", "right")}
_SEPARATORS = re.compile(r"[_\-\.\s]+")


def _homology_key(label: str, hemisphere: str) -> str | None:
    """Label with its hemisphere marker removed (``"Laccumb"`` → ``"accumb"``), or None."""
    tokens = [t for t in _SEPARATORS.split(str(label)) if t]
    markers = _HEMISPHERE_TOKENS[hemisphere]
    kept = [t for t in tokens if t.lower() not in markers]
    if len(kept) < len(tokens) and kept:
        return "_".join(t.lower() for t in kept)
    first = tokens[0] if tokens else ""
    # glued one-letter prefix, ENIGMA style: "Lthal", "Rhippo"
    if len(first) > 1 and first[0] == hemisphere and first[1].islower():
        return "_".join([first[1:].lower()] + [t.lower() for t in tokens[1:]])
    return None


def homologous_pairs(
    labels: np.ndarray, coords: np.ndarray, left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair left and right regions of one structure class as homologues.

    First by label with the hemisphere marker removed (``LH_Hippocampus`` ↔
    ``RH_Hippocampus``, ``Lthal`` ↔ ``Rthal``), keeping only keys unique on both sides;
    the rest by mirrored-coordinate matching: ``scipy.optimize.linear_sum_assignment`` on
    distances between left centroids reflected to ``x → −x`` and right centroids (mm).

    Parameters
    ----------
    labels : (r,) str array
    coords : (r, 3) float array, mm
    left, right : int arrays
        Global indices of the left and right regions of the class.

    Returns
    -------
    pairs : (p, 2) int array
        ``(left, right)`` global indices.
    methods : (p,) str array
        ``"label"`` or ``"coordinates"``.
    unpaired_left, unpaired_right : int arrays
        Regions left without a partner (only when the two sides differ in size).
    """
    left_keys = {k: _homology_key(labels[k], "L") for k in left}
    right_keys = {k: _homology_key(labels[k], "R") for k in right}
    lk = [v for v in left_keys.values() if v is not None]
    rk = [v for v in right_keys.values() if v is not None]
    unique = {k for k in set(lk) & set(rk) if lk.count(k) == 1 and rk.count(k) == 1}
    by_key_right = {v: k for k, v in right_keys.items() if v in unique}
    pairs = [(k, by_key_right[v]) for k, v in left_keys.items() if v in unique]
    methods = ["label"] * len(pairs)
    rest_left = np.array([k for k in left if left_keys[k] not in unique], dtype=np.int64)
    rest_right = np.array([k for k in right if right_keys[k] not in unique], dtype=np.int64)
    if rest_left.size and rest_right.size:
        mirrored = coords[rest_left] @ MIDLINE_REFLECTION
        cost = np.linalg.norm(mirrored[:, None, :] - coords[rest_right][None, :, :], axis=2)
        a, b = linear_sum_assignment(cost)
        pairs += [(int(rest_left[x]), int(rest_right[y])) for x, y in zip(a, b)]
        methods += ["coordinates"] * len(a)
        rest_left = np.delete(rest_left, a)
        rest_right = np.delete(rest_right, b)
    pair_array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    order = np.argsort(pair_array[:, 0], kind="stable")
    return pair_array[order], np.array(methods, dtype=str)[order], rest_left, rest_right


def homologue_partner(brain: Brain) -> np.ndarray:
    """``partner[r]``: the homologue of region ``r`` in the other hemisphere, ``-1`` if none.

    Left and right regions are paired within each structure class by `homologous_pairs`.

    Returns
    -------
    (n_regions,) int64 array
    """
    partner = np.full(brain.n_regions, -1, dtype=np.int64)
    hemisphere, structure, labels = brain.hemisphere, brain.structure, np.asarray(brain.labels)
    for cls in np.unique(structure):
        left = np.flatnonzero((structure == cls) & (hemisphere == "L"))
        right = np.flatnonzero((structure == cls) & (hemisphere == "R"))
        pairs, *_ = homologous_pairs(labels, brain.coords, left, right)
        partner[pairs[:, 0]], partner[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
    return partner
