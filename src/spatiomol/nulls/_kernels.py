"""Compiled inner loops of the null generator (numba, no fastmath: IEEE-exact like numpy).

Two loops dominate Algorithm 1 and cannot be vectorised well with numpy: Váša's greedy
assignment (``m`` dependent steps per spin) and the gather of permuted CGE values into
distance bins. Both run here, in parallel over spins. Floating-point operations are
written in the same order as the numpy/scipy reference (no FMA contraction, since
``fastmath`` is off), so the results are bit-identical to it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, inline="always")
def _nearest(squared, row):
    """``numpy.argmin`` of the row of roots ``sqrt(squared[row])`` (taken columns hold inf).

    One pass over squared distances; a square root is taken only when two squared
    distances are within a few ulps (a correctly rounded sqrt is monotone, but distinct
    squares may share a root, and then the earlier column wins, as in numpy).
    """
    m = squared.shape[1]
    best = -1
    smallest = np.inf
    for k in range(m):
        d = squared[row, k]
        if d < smallest:
            if best >= 0 and d >= smallest * (1.0 - 1e-12) and np.sqrt(d) == np.sqrt(smallest):
                smallest = d  # same root: the earlier column keeps the place
            else:
                smallest = d
                best = k
    return best, np.sqrt(smallest)


@njit(cache=True, nogil=True)
def _vasa_one(original, rotated, source, cost, squared, nearest, nearest_dist):
    m = original.shape[0]
    for i in range(m):
        for k in range(m):
            dx = original[i, 0] - rotated[k, 0]
            dy = original[i, 1] - rotated[k, 1]
            dz = original[i, 2] - rotated[k, 2]
            # scipy.spatial.distance_matrix's order: (dx² + dy²) + dz², then sqrt
            squared[i, k] = (dx * dx + dy * dy) + dz * dz
        nearest[i], nearest_dist[i] = _nearest(squared, i)
    for _ in range(m):
        # original region whose nearest unassigned rotated region is farthest (first on ties)
        row = -1
        far = -np.inf
        for i in range(m):
            if nearest_dist[i] > far:
                far = nearest_dist[i]
                row = i
        col = nearest[row]
        source[row] = col
        cost[row] = far
        nearest_dist[row] = -np.inf
        nearest[row] = -1
        for i in range(m):
            squared[i, col] = np.inf
        # only regions whose nearest candidate was just taken rescan their row
        for i in range(m):
            if nearest[i] == col:
                nearest[i], nearest_dist[i] = _nearest(squared, i)


@njit(cache=True, parallel=True)
def vasa_batch(original, rotated, source, cost):
    """Fill ``source`` and ``cost`` (batch, m) for rotations ``rotated`` (batch, m, 3)."""
    batch, m = rotated.shape[0], rotated.shape[1]
    for b in prange(batch):
        squared = np.empty((m, m))
        nearest = np.empty(m, dtype=np.int64)
        nearest_dist = np.empty(m)
        _vasa_one(original, rotated[b], source[b], cost[b], squared, nearest, nearest_dist)


@njit(cache=True, parallel=True)
def binned_sums(cge, permutations, bin_index, n_bins, out):
    """``out[k, b] = Σ_{i<j, bin_index[i, j] = b} cge[perm_k[i], perm_k[j]]`` for every null ``k``.

    Pairs are visited row by row, so each permuted CGE row is read from cache while the
    few bin accumulators stay in L1.
    """
    n = permutations.shape[0]
    r = permutations.shape[1]
    for k in prange(n):
        p = permutations[k]
        acc = np.zeros(n_bins)
        for i in range(r):
            row = cge[p[i]]
            bins = bin_index[i]
            for j in range(i + 1, r):
                acc[bins[j]] += row[p[j]]
        for b in range(n_bins):
            out[k, b] = acc[b]
