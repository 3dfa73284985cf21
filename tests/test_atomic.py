"""Atomic writes: a failing writer leaves the old file and no temporary file."""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.atomic import atomic_path


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "sub" / "results.npz"
    with atomic_path(target, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, a=np.arange(3))
    assert np.array_equal(np.load(target)["a"], np.arange(3))

    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target, suffix=".tmp.npz") as tmp:
            np.savez_compressed(tmp, a=np.arange(5))
            raise RuntimeError("killed mid-write")
    assert np.array_equal(np.load(target)["a"], np.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.npz"]
