"""`pairs_within`: every unordered pair of the distinct regions given."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from spatiomol.data.brain import pairs_within


def test_pairs_within_drops_duplicates_and_orders_pairs():
    regions = np.array([7, 2, 9, 2, 7, 4])
    i, j = pairs_within(regions)
    # independent reference: itertools over the distinct regions, sorted
    expected = list(combinations(sorted(set(regions.tolist())), 2))
    assert list(zip(i.tolist(), j.tolist())) == expected
    assert i.size == 4 * 3 // 2 and np.all(i < j)
    assert pairs_within(np.array([3, 3]))[0].size == 0
