"""The ``"random"`` null family: uniform permutations of regions within each structure class.

The naive null of the paper's Table 3 ("permuted"): each structure class (cortex,
subcortex, cerebellum) is permuted uniformly on its own, with no rotation, so hemispheres
are mixed but classes never are. Permutations follow the convention of
`Brain.permute_expression`: ``perm[i]`` is the region whose expression region ``i``
receives. A null's cost is Algorithm 1's literal reassignment cost
``Σ_j ‖C[j] − C[π(j)]‖`` over cortical regions, in mm.

`random_orders` (independent uniform permutations from one generator) is also what the
spin families' non-cortical shuffles draw (`spatiomol.nulls.spins`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatiomol.data.brain import Brain

__all__ = ["RandomPlan", "plan_random", "random_batch", "random_orders"]


def random_orders(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``n`` independent uniform permutations of ``range(size)``, shape (n, size)."""
    return rng.random((n, size)).argsort(axis=1, kind="stable")


@dataclass(frozen=True)
class RandomPlan:
    """Uniform permutations within each structure class (no rotation, hemispheres mixed).

    Attributes
    ----------
    classes : list of int arrays
        Regions of each structure class.
    orders : list of (n, size) int arrays
    coords : (r, 3) float array, mm
    cortex : int array
        Cortical regions (their displacement is the null's cost).
    """

    classes: list[np.ndarray]
    orders: list[np.ndarray]
    coords: np.ndarray
    cortex: np.ndarray

    @property
    def n(self) -> int:
        return self.orders[0].shape[0] if self.orders else 0


def plan_random(brain: Brain, n: int, rng: np.random.Generator) -> RandomPlan:
    """Draw ``n`` naive nulls: plain permutations within each structure class."""
    structure = brain.structure.astype(str)
    classes = [np.flatnonzero(structure == s) for s in sorted(set(structure))]
    classes = [c for c in classes if c.size > 1]
    orders = [random_orders(rng, n, c.size) for c in classes]
    return RandomPlan(classes, orders, brain.coords, np.flatnonzero(structure == "cortex"))


def random_batch(
    plan: RandomPlan, rows: np.ndarray, n_regions: int, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Permutations of naive nulls ``rows`` and their cost (``n_jobs`` unused: numpy only).

    The cost is Algorithm 1's literal reassignment cost Σ_j ‖C[j] − C[π(j)]‖ over cortical
    regions, in mm (there is no rotation to compare with).
    """
    perms = np.tile(np.arange(n_regions, dtype=np.int64), (len(rows), 1))
    for cls, order in zip(plan.classes, plan.orders):
        perms[:, cls] = cls[order[rows]]
    c = plan.coords[plan.cortex]
    moved = plan.coords[perms[:, plan.cortex]]
    cost = np.linalg.norm(moved - c[None], axis=2).sum(axis=1)
    return perms, cost
