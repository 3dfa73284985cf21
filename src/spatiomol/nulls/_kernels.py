"""Compiled inner loops of the null generator (numba, no fastmath: IEEE-exact like numpy).

Two loops dominate Algorithm 1 and cannot be vectorised well with numpy: Váša's greedy
assignment (``m`` dependent steps per spin) and the gather of permuted CGE values into
distance bins. Both run here, together with an exact linear assignment solver for the
Hungarian spins. Floating-point operations are written in the same order as the
numpy/scipy reference (no FMA contraction, since ``fastmath`` is off), so the results are
bit-identical to it.

Every kernel is serial over its batch and releases the GIL (``nogil``); `run_in_threads`
splits a batch over an explicit number of Python threads. Parallelism is thus an argument
of the caller, and no process-wide setting (numba's thread count, BLAS threads) is
touched: each null is computed by one thread in the same arithmetic, so results do not
depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit


def default_jobs() -> int:
    """Cores this process may use (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_in_threads(kernel: Callable[[int, int], None], n_rows: int, n_jobs: int | None) -> None:
    """Call ``kernel(start, stop)`` on contiguous row ranges covering ``range(n_rows)``.

    ``n_jobs`` threads (None: `default_jobs`) each take one range; the kernels release the
    GIL, so the threads run in parallel. The ranges write disjoint rows of the outputs.
    """
    jobs = default_jobs() if n_jobs is None else int(n_jobs)
    if jobs < 1:
        raise ValueError(f"n_jobs must be a positive number of threads or None, got {n_jobs!r}")
    jobs = min(jobs, max(1, n_rows))
    if jobs == 1:
        kernel(0, n_rows)
        return
    bounds = np.linspace(0, n_rows, jobs + 1).astype(int)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(kernel, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        for future in futures:
            future.result()


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


@njit(cache=True, nogil=True)
def vasa_rows(original, rotated, source, cost, start, stop):
    """Fill rows ``start:stop`` of ``source`` and ``cost`` (batch, m) for rotations ``rotated`` (batch, m, 3)."""
    m = rotated.shape[1]
    for b in range(start, stop):
        squared = np.empty((m, m))
        nearest = np.empty(m, dtype=np.int64)
        nearest_dist = np.empty(m)
        _vasa_one(original, rotated[b], source[b], cost[b], squared, nearest, nearest_dist)


@njit(cache=True, nogil=True)
def binned_sums_rows(cge, permutations, bin_index, n_bins, out, start, stop):
    """``out[k, b] = Σ_{i<j, bin_index[i, j] = b} cge[perm_k[i], perm_k[j]]`` for nulls ``start <= k < stop``.

    Pairs are visited row by row, so each permuted CGE row
    is read from cache while the few bin accumulators stay in L1.
    """
    r = permutations.shape[1]
    for k in range(start, stop):
        p = permutations[k]
        acc = np.zeros(n_bins)
        for i in range(r):
            row = cge[p[i]]
            bins = bin_index[i]
            for j in range(i + 1, r):
                acc[bins[j]] += row[p[j]]
        for b in range(n_bins):
            out[k, b] = acc[b]


@njit(cache=True, nogil=True)
def binned_sums_replaced_rows(cge, permutations, position, new_corr, bin_index, n_bins, out, start, stop):
    """`binned_sums_rows` for nulls some of whose rows are new expression, not permuted rows.

    Region ``i`` with ``position[i] >= 0`` holds new expression; the correlation of its row
    with row ``j`` of null ``k`` is ``new_corr[k, position[i], j]``. Pairs of two permuted
    regions read ``cge[perm_k[i], perm_k[j]]`` as in `binned_sums_rows`.
    """
    r = permutations.shape[1]
    for k in range(start, stop):
        p = permutations[k]
        acc = np.zeros(n_bins)
        for i in range(r):
            row = cge[p[i]]
            bins = bin_index[i]
            pi = position[i]
            for j in range(i + 1, r):
                if pi >= 0:
                    value = new_corr[k, pi, j]
                elif position[j] >= 0:
                    value = new_corr[k, position[j], i]
                else:
                    value = row[p[j]]
                acc[bins[j]] += value
        for b in range(n_bins):
            out[k, b] = acc[b]


# over 80 lines on purpose: one numba port of scipy's solver whose phases all update the same duals and matching
@njit(cache=True, nogil=True)
def _assign_one(cost, col4row, row4col, u, v, shortest, path, scanned_rows, scanned_cols, remaining):
    """Minimum-cost perfect matching of a square cost matrix (exact, dense).

    Shortest augmenting paths with dual variables (Crouse 2016, the method of
    ``scipy.optimize.linear_sum_assignment``), started from the column reduction
    (``v[j] = min_i cost[i, j]``, each column's cheapest row assigned to it when free) and
    a row reduction (a free row takes its cheapest reduced-cost column when that is free).
    With a unique optimum (the generic case for real-valued distances) the matching is
    scipy's. On rotated hemispheres of 200 regions about 40 % of the rows are still free
    after these reductions and need a search; the searches dominate the time. (Measured:
    Jonker–Volgenant's augmenting row reduction frees fewer rows but its bidding costs more
    than it saves, and a sparse candidate graph needs dual repairs that cost more still.)
    """
    n = cost.shape[0]
    for i in range(n):
        col4row[i] = -1
        u[i] = 0.0
    for j in range(n):
        best = np.inf
        arg = -1
        for i in range(n):
            if cost[i, j] < best:
                best = cost[i, j]
                arg = i
        v[j] = best
        row4col[j] = -1
        if col4row[arg] == -1:
            col4row[arg] = j
            row4col[j] = arg
    # row reduction: a free row whose cheapest reduced-cost column is free takes it (tight)
    for i in range(n):
        if col4row[i] != -1:
            continue
        low = np.inf
        arg = -1
        for j in range(n):
            h = cost[i, j] - v[j]
            if h < low:
                low = h
                arg = j
        u[i] = low
        if row4col[arg] == -1:
            col4row[i] = arg
            row4col[arg] = i
    # the columns not yet reached by a search, with their path costs and potentials, are
    # kept compacted side by side, so the scan reads three contiguous arrays
    remaining_short = np.empty(n)
    remaining_v = np.empty(n)
    for current in range(n):
        if col4row[current] != -1:
            continue
        for j in range(n):
            shortest[j] = np.inf
            path[j] = -1
            scanned_cols[j] = False
            remaining[j] = n - j - 1
            remaining_short[j] = np.inf
            remaining_v[j] = v[n - j - 1]
        for i in range(n):
            scanned_rows[i] = False
        n_remaining = n
        min_val = 0.0
        i = current
        sink = -1
        while sink == -1:
            scanned_rows[i] = True
            index = -1
            lowest = np.inf
            base = min_val - u[i]
            row = cost[i]
            for it in range(n_remaining):
                j = remaining[it]
                reduced = base + row[j] - remaining_v[it]
                if reduced < remaining_short[it]:
                    path[j] = i
                    remaining_short[it] = reduced
                value = remaining_short[it]
                if value < lowest or (value == lowest and row4col[j] == -1):
                    lowest = value
                    index = it
            min_val = lowest
            j = remaining[index]
            shortest[j] = lowest
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            scanned_cols[j] = True
            n_remaining -= 1
            remaining[index] = remaining[n_remaining]
            remaining_short[index] = remaining_short[n_remaining]
            remaining_v[index] = remaining_v[n_remaining]
        u[current] += min_val
        for i in range(n):
            if scanned_rows[i] and i != current:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(n):
            if scanned_cols[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == current:
                break


@njit(cache=True, nogil=True)
def hungarian_rows(original, rotated, source, cost, start, stop):
    """Optimal one-to-one assignment of each rotation ``start <= b < stop``.

    ``source[b, i]`` is the rotated region assigned to original region ``i`` and
    ``cost[b, i]`` their distance, computed as ``scipy.spatial.distance_matrix`` does
    (``sqrt((dx² + dy²) + dz²)``), so that costs are bit-identical to neuromaps'.
    """
    m = rotated.shape[1]
    distance = np.empty((m, m))
    row4col = np.empty(m, dtype=np.int64)
    u = np.empty(m)
    v = np.empty(m)
    shortest = np.empty(m)
    path = np.empty(m, dtype=np.int64)
    scanned_rows = np.empty(m, dtype=np.bool_)
    scanned_cols = np.empty(m, dtype=np.bool_)
    remaining = np.empty(m, dtype=np.int64)
    for b in range(start, stop):
        for i in range(m):
            for k in range(m):
                dx = original[i, 0] - rotated[b, k, 0]
                dy = original[i, 1] - rotated[b, k, 1]
                dz = original[i, 2] - rotated[b, k, 2]
                distance[i, k] = np.sqrt((dx * dx + dy * dy) + dz * dz)
        _assign_one(distance, source[b], row4col, u, v, shortest, path, scanned_rows, scanned_cols, remaining)
        for i in range(m):
            cost[b, i] = distance[i, source[b, i]]
