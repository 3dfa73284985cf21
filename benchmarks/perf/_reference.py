"""Helpers the speed benchmarks share to run a reference library on spatiomol's own draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def neuromaps_spins_fed(plan: Any, n: int) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """neuromaps' spin module, fed the first ``n`` rotations of a spatiomol spin ``plan``.

    Inside the block ``neuromaps.nulls.spins._gen_rotation`` returns ``plan``'s rotation
    matrices in order (left, right hemisphere), so ``gen_spinsamples`` reproduces
    spatiomol's spins and both paths can be compared null by null; it is restored on exit.
    Yields ``(spins module, cortex, hemiid)``: the cortical region indices (left then right)
    and their hemisphere labels (0 left, 1 right), as ``gen_spinsamples`` takes them.
    """
    from neuromaps.nulls import spins as neuromaps_spins

    groups = plan.groups
    cortex = np.concatenate([groups.cortex_left, groups.cortex_right])
    hemiid = np.r_[np.zeros(groups.cortex_left.size, int), np.ones(groups.cortex_right.size, int)]
    rotations = iter(list(zip(plan.rotations_left[:n], plan.rotations_right[:n])))
    original = neuromaps_spins._gen_rotation
    neuromaps_spins._gen_rotation = lambda seed=None: next(rotations)
    try:
        yield neuromaps_spins, cortex, hemiid
    finally:
        neuromaps_spins._gen_rotation = original
