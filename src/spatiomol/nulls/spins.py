"""Spatial null permutations: cortical spins (Váša or Hungarian assignment), subcortical nulls.

Every function here returns *permutations* in the convention of
`Brain.permute_expression`: ``perm[i]`` is the region whose expression region ``i``
receives in the null brain. A permutation never moves expression across structure
classes (cortex / subcortex / cerebellum), and spins and shuffles never move it across
hemispheres.

Cortex (Alexander-Bloch et al. 2018; Váša et al. 2018)
-------------------------------------------------------
1. Each hemisphere's cortical centroids are centred on that hemisphere's mean centroid
   and projected onto the unit sphere (`sphere_coordinates`).
2. A rotation ``R`` is drawn uniformly on SO(3) (QR of a 3 × 3 standard-normal matrix
   with the signs of ``diag(R)`` fixed, first column flipped when the determinant is
   negative); the right hemisphere uses the left rotation reflected across the
   mid-sagittal plane, ``F R F`` with ``F = diag(-1, 1, 1)`` (`random_rotations`).
   Row-vector coordinates are rotated as ``coords @ R``.
3. Váša's greedy assignment (`vasa_assignment`) or the optimal one-to-one assignment
   (`hungarian_assignment`, minimum total distance) turns each rotation into a bijection
   within the hemisphere; its per-region cost is the chord distance on the unit sphere
   between a region and the rotated position of the region whose data it receives.

All three steps reproduce ``neuromaps.nulls.spins.gen_spinsamples(method="vasa")``
operation for operation (same floating-point arithmetic, same first-index tie rules),
so that for the same rotation matrices the assignments and costs are identical; the
tests check this on the hcp-s100 cortex. The greedy loop keeps, for every original
region, its nearest still-unassigned rotated region and rescans only the rows whose
nearest was just taken; it is compiled with numba and parallel over spins, because a
numpy version of these ``m`` dependent steps stayed several times short of the speed goal.
The Hungarian assignment equals ``gen_spinsamples(method="hungarian")`` (scipy's
``linear_sum_assignment`` on the same distances) whenever the optimum is unique; it is
solved by a compiled shortest-augmenting-path solver started from the column reduction.

Subcortex and cerebellum (``subcortex``)
----------------------------------------
``"shuffle"``: within each non-cortical structure class, homologous left/right regions
are paired (`homologous_pairs`); one random permutation of the pair slots is applied to
both hemispheres, so bilateral symmetry is kept. Regions without a partner (hemisphere
``"B"``, or left/right regions left unmatched) are shuffled among themselves within their
structure class and hemisphere.

``"moran"``: each non-cortical structure class (both hemispheres together) gets a Moran
spectral randomisation on its own inverse-distance weights (`spatiomol.nulls.spectral`):
its expression rows are *replaced*, not permuted, keeping each gene's mean, variance and
Moran's I within the class and the gene–gene covariance; one sign draw per null and class
is shared by all genes. The plan's ``replaced`` then says which rows.

Cortical regions marked ``"B"`` (rare) are shuffled among themselves in both cases, as
no sphere can be fitted to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatiomol.data.brain import Brain
from spatiomol.data.homology import MIDLINE_REFLECTION, homologous_pairs
from spatiomol.nulls import _kernels
from spatiomol.nulls.class_permutations import random_orders
from spatiomol.nulls.spectral import MoranPlan, plan_moran

ASSIGNMENTS = ("vasa", "hungarian")
SUBCORTEX_NULLS = ("shuffle", "moran")

#: reflection across the mid-sagittal (Y-Z) plane


# --------------------------------------------------------------------------- rotations
def rotations_from_gaussians(gaussians: np.ndarray) -> np.ndarray:
    """Uniform SO(3) rotations from standard-normal 3 × 3 matrices (neuromaps' recipe).

    Parameters
    ----------
    gaussians : (n, 3, 3) float array
        Independent standard-normal draws, one matrix per rotation.

    Returns
    -------
    (n, 3, 3) float array
        ``Q · diag(sign(diag(R)))`` for ``Q, R = qr(G)``, with the first column negated
        where the determinant is −1: Haar-distributed on SO(3).
    """
    gaussians = np.asarray(gaussians, dtype=np.float64)
    if gaussians.ndim != 3 or gaussians.shape[1:] != (3, 3):
        raise ValueError(f"gaussians must have shape (n, 3, 3), got {gaussians.shape}")
    q, r = np.linalg.qr(gaussians)
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))
    rotations = q * signs[:, None, :]
    improper = np.linalg.det(rotations) < 0
    rotations[improper, :, 0] *= -1.0
    return rotations


def random_rotations(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` left-hemisphere rotations uniform on SO(3) and their mirrored right partners.

    Parameters
    ----------
    n : int
        Number of rotations.
    rng : numpy.random.Generator

    Returns
    -------
    left, right : (n, 3, 3) float arrays
        ``right[k] = F @ left[k] @ F`` with ``F = diag(-1, 1, 1)``.
    """
    left = rotations_from_gaussians(rng.standard_normal((n, 3, 3)))
    right = MIDLINE_REFLECTION @ left @ MIDLINE_REFLECTION
    return left, right


def sphere_coordinates(coords: np.ndarray, hemisphere: np.ndarray) -> np.ndarray:
    """Centre each hemisphere's centroids on their mean and project them onto the unit sphere.

    Parameters
    ----------
    coords : (m, 3) float array
        Centroids in mm.
    hemisphere : (m,) array of {"L", "R"}

    Returns
    -------
    (m, 3) float array of unit vectors (dimensionless).
    """
    coords = np.asarray(coords, dtype=np.float64)
    hemisphere = np.asarray(hemisphere)
    out = np.empty_like(coords)
    for h in np.unique(hemisphere):
        idx = np.flatnonzero(hemisphere == h)
        centred = coords[idx] - coords[idx].mean(axis=0)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError(
                f"hemisphere {h!r}: a cortical centroid coincides with the hemisphere's mean "
                "centroid, so it cannot be projected onto the sphere"
            )
        out[idx] = centred / norms
    return out


# ------------------------------------------------------------------ Váša assignment
def _check_batch(original: np.ndarray, rotated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    original = np.ascontiguousarray(original, dtype=np.float64)
    rotated = np.ascontiguousarray(rotated, dtype=np.float64)
    if rotated.ndim == 2:
        rotated = rotated[None]
    if rotated.ndim != 3 or original.shape != rotated.shape[1:] or original.shape[1:] != (3,):
        raise ValueError(f"original must be (m, 3) and rotated (batch, m, 3); got {original.shape} and {rotated.shape}")
    return original, rotated


def _assign(kernel, original, rotated, n_jobs):
    original, rotated = _check_batch(original, rotated)
    batch, m = rotated.shape[:2]
    source = np.empty((batch, m), dtype=np.int64)
    cost = np.empty((batch, m))
    if m:
        _kernels.run_in_threads(lambda a, b: kernel(original, rotated, source, cost, a, b), batch, n_jobs)
    return source, cost


def vasa_assignment(
    original: np.ndarray, rotated: np.ndarray, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Váša et al. (2018) greedy one-to-one reassignment, for a batch of rotations.

    Repeatedly, the original region whose nearest still-unassigned rotated region is
    farthest away is assigned that rotated region. Ties go to the lowest index, as with
    ``numpy.argmax``/``argmin`` inside neuromaps.

    Parameters
    ----------
    original : (m, 3) float array
        Unit-sphere coordinates of one hemisphere's regions.
    rotated : (batch, m, 3) or (m, 3) float array
        The same coordinates after each rotation (``original @ R``).
    n_jobs : int or None
        Threads over rotations (None: every core this process may use).

    Returns
    -------
    source : (batch, m) int64 array
        ``source[b, i]``: the region (local index) whose data region ``i`` receives.
    cost : (batch, m) float array
        ``‖original[i] − rotated[b, source[b, i]]‖`` (unit-sphere chord length).

    Notes
    -----
    neuromaps rescans the whole ``m × m`` distance matrix at each of the ``m`` steps
    (O(m³) per spin). Here each original region keeps its nearest unassigned rotated
    region and that distance; after an assignment only the regions whose nearest was
    just taken rescan their row. The sequence of choices, hence the output, is the same;
    the distances are computed in scipy's arithmetic order, so costs are bit-identical.
    The loop is compiled (numba) and runs in parallel over spins.
    """
    return _assign(_kernels.vasa_rows, original, rotated, n_jobs)


def hungarian_assignment(
    original: np.ndarray, rotated: np.ndarray, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one reassignment (minimum total distance), for a batch of rotations.

    Parameters
    ----------
    original : (m, 3) float array
        Unit-sphere coordinates of one hemisphere's regions.
    rotated : (batch, m, 3) or (m, 3) float array
        The same coordinates after each rotation (``original @ R``).
    n_jobs : int or None
        Threads over rotations (None: every core this process may use).

    Returns
    -------
    source : (batch, m) int64 array
        ``source[b, i]``: the region (local index) whose data region ``i`` receives; the
        assignment minimises ``Σ_i ‖original[i] − rotated[b, source[b, i]]‖``.
    cost : (batch, m) float array
        ``‖original[i] − rotated[b, source[b, i]]‖`` (unit-sphere chord length).

    Notes
    -----
    The distances are computed in ``scipy.spatial.distance_matrix``'s arithmetic order and
    the matching is exact (shortest augmenting paths, as scipy's
    ``linear_sum_assignment``), so with a unique optimum the output equals
    ``neuromaps.nulls.spins.gen_spinsamples(method="hungarian")``'s for the same rotations.
    """
    return _assign(_kernels.hungarian_rows, original, rotated, n_jobs)


# ----------------------------------------------------------------- region grouping
@dataclass(frozen=True)
class RegionGroups:
    """How a brain's regions are split for null generation (global region indices).

    Attributes
    ----------
    cortex_left, cortex_right : int arrays
        Cortical regions spun on the left / right sphere.
    symmetric_pairs : list of (p, 2) int arrays
        One array per non-cortical structure class: rows ``(left, right)`` of homologues.
    pairing_methods : list of (p,) str arrays
        ``"label"`` or ``"coordinates"`` for each pair of ``symmetric_pairs``.
    unpaired : list of int arrays
        Groups shuffled freely (same structure class and hemisphere, no partner).
    """

    cortex_left: np.ndarray
    cortex_right: np.ndarray
    symmetric_pairs: list[np.ndarray]
    pairing_methods: list[np.ndarray]
    unpaired: list[np.ndarray]

    def summary(self, labels: np.ndarray) -> dict:
        return {
            "cortex_left": int(self.cortex_left.size),
            "cortex_right": int(self.cortex_right.size),
            "homologous_pairs": [
                [str(labels[a]), str(labels[b]), str(how)]
                for pairs, methods in zip(self.symmetric_pairs, self.pairing_methods)
                for (a, b), how in zip(pairs, methods)
            ],
            "unpaired_groups": [[str(labels[k]) for k in g] for g in self.unpaired],
        }


def region_groups(brain: Brain) -> RegionGroups:
    """Split ``brain``'s regions into spun cortex, symmetric pairs and free groups."""
    hemisphere = brain.hemisphere.astype(str)
    structure = brain.structure.astype(str)
    labels = brain.labels.astype(str)
    coords = brain.coords
    cortex = structure == "cortex"
    symmetric, methods, unpaired = [], [], []
    cortex_midline = np.flatnonzero(cortex & (hemisphere == "B"))
    if cortex_midline.size > 1:
        unpaired.append(cortex_midline)
    for struct in sorted(set(structure) - {"cortex"}):
        left = np.flatnonzero((structure == struct) & (hemisphere == "L"))
        right = np.flatnonzero((structure == struct) & (hemisphere == "R"))
        midline = np.flatnonzero((structure == struct) & (hemisphere == "B"))
        pairs, how, rest_left, rest_right = homologous_pairs(labels, coords, left, right)
        if len(pairs) > 1:
            symmetric.append(pairs)
            methods.append(how)
        unpaired += [g for g in (rest_left, rest_right, midline) if g.size > 1]
    return RegionGroups(
        cortex_left=np.flatnonzero(cortex & (hemisphere == "L")),
        cortex_right=np.flatnonzero(cortex & (hemisphere == "R")),
        symmetric_pairs=symmetric,
        pairing_methods=methods,
        unpaired=unpaired,
    )


# --------------------------------------------------------------------- null plans
@dataclass(frozen=True)
class SpinPlan:
    """All random draws of ``n`` spatial nulls, made up front so results do not depend
    on batching or threads.

    Attributes
    ----------
    groups : RegionGroups
    sphere : (r, 3) float array
        Unit-sphere coordinates of cortical regions (rows of other regions unused).
    rotations_left, rotations_right : (n, 3, 3) float arrays
    pair_orders : list of (n, p) int arrays
        Slot permutation of each symmetric pair set.
    free_orders : list of (n, size) int arrays
        Permutation of each unpaired group.
    assignment : {"vasa", "hungarian"}
    replaced : MoranPlan or None
        With ``subcortex="moran"``: the non-cortical regions whose rows are replaced (their
        permutation entries stay the identity).
    """

    groups: RegionGroups
    sphere: np.ndarray
    rotations_left: np.ndarray
    rotations_right: np.ndarray
    pair_orders: list[np.ndarray]
    free_orders: list[np.ndarray]
    assignment: str = "vasa"
    replaced: MoranPlan | None = None

    @property
    def n(self) -> int:
        return self.rotations_left.shape[0]


def check_spin_hemispheres(brain: Brain, method: str) -> None:
    """ValueError unless each of the L and R hemispheres has at least 2 cortical regions."""
    hemisphere = brain.hemisphere.astype(str)
    cortex = brain.structure.astype(str) == "cortex"
    for h, name in (("L", "left"), ("R", "right")):
        idx = np.flatnonzero(cortex & (hemisphere == h))
        if idx.size < 2:
            found = ", ".join(str(x) for x in brain.labels[idx]) or "none"
            raise ValueError(
                f"method {method!r}: brain {brain.name!r} has {idx.size} cortical region(s) in the {name} "
                f"hemisphere ({found}); spins need at least 2 cortical regions in each of the L and R "
                "hemispheres (use method='moran' or 'random' for other brains)"
            )


def plan_spins(
    brain: Brain,
    n: int,
    rng: np.random.Generator,
    assignment: str = "vasa",
    subcortex: str = "shuffle",
) -> SpinPlan:
    """Draw the rotations and non-cortical nulls of ``n`` spatial nulls of ``brain``.

    The rotations are drawn first, then the shuffles (``subcortex="shuffle"``) or the
    Moran signs (``"moran"``), all from ``rng``.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    if subcortex not in SUBCORTEX_NULLS:
        raise ValueError(f"subcortex must be one of {SUBCORTEX_NULLS}, got {subcortex!r}")
    groups = region_groups(brain)
    sphere = np.zeros((brain.n_regions, 3))
    for idx in (groups.cortex_left, groups.cortex_right):
        if idx.size > 1:  # a lone region has a single (identity) assignment and no sphere
            sphere[idx] = sphere_coordinates(brain.coords[idx], brain.hemisphere[idx])
    left, right = random_rotations(n, rng)
    replaced = None
    if subcortex == "moran":
        structure = brain.structure.astype(str)
        cortex = structure == "cortex"
        classes = [np.flatnonzero(structure == s) for s in sorted(set(structure) - {"cortex"})]
        groups = RegionGroups(
            groups.cortex_left,
            groups.cortex_right,
            [],
            [],
            [g for g in groups.unpaired if cortex[g].all()],
        )
        pair_orders = []
        free_orders = [random_orders(rng, n, len(g)) for g in groups.unpaired]
        replaced = plan_moran(brain.coords, classes, n, rng, brain.labels, what="subcortex='moran'")
    else:
        pair_orders = [random_orders(rng, n, len(p)) for p in groups.symmetric_pairs]
        free_orders = [random_orders(rng, n, len(g)) for g in groups.unpaired]
    return SpinPlan(groups, sphere, left, right, pair_orders, free_orders, assignment, replaced)


def apply_shuffles(perms: np.ndarray, groups: RegionGroups, pair_orders, free_orders, rows) -> None:
    """Write the symmetric and free shuffles of nulls ``rows`` into ``perms`` in place."""
    for pairs, order in zip(groups.symmetric_pairs, pair_orders):
        o = order[rows]
        perms[:, pairs[:, 0]] = pairs[o, 0]
        perms[:, pairs[:, 1]] = pairs[o, 1]
    for group, order in zip(groups.unpaired, free_orders):
        perms[:, group] = group[order[rows]]


def spin_batch(
    plan: SpinPlan, rows: np.ndarray, n_regions: int, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Permutations and cortical assignment costs of nulls ``rows`` of a `SpinPlan`.

    Returns
    -------
    perms : (len(rows), r) int64 array
    cost : (len(rows),) float array
        Sum over cortical regions of the per-region assignment cost (unit-sphere chord
        length).
    """
    assign = hungarian_assignment if plan.assignment == "hungarian" else vasa_assignment
    perms = np.tile(np.arange(n_regions, dtype=np.int64), (len(rows), 1))
    cost = np.zeros(len(rows))
    g = plan.groups
    for idx, rotations in ((g.cortex_left, plan.rotations_left), (g.cortex_right, plan.rotations_right)):
        if idx.size < 2:
            continue
        original = plan.sphere[idx]
        rotated = np.matmul(original[None], rotations[rows])
        source, region_cost = assign(original, rotated, n_jobs)
        perms[:, idx] = idx[source]
        cost += region_cost.sum(axis=1)
    apply_shuffles(perms, g, plan.pair_orders, plan.free_orders, rows)
    return perms, cost
