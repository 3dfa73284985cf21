"""Content hashes: the one home of every SHA-256 the package computes.

Hashes tie results to the data they came from (dataset files, expression matrices, run
settings), so each kind has exactly one definition here. Changing any function below
changes run ids, derived seeds or cache keys of existing results folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, memoised on (resolved path, size, mtime) per process.

    An edited file changes size or modification time, so the memo never returns the
    hash of old contents.
    """
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex, first 16 characters) of an array's dtype, shape and bytes (manifests)."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()[:16]


def expression_sha256(X: np.ndarray) -> str:
    """Full hex SHA-256 of an expression matrix as float64 in C order (ties nulls to their data)."""
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes()).hexdigest()


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from nested dicts/lists/numpy values; arrays become their digest.

    Large arrays (e.g. a synthetic brain's noiseless target in its provenance) are
    recorded as ``{"sha256": ..., "shape": ...}`` so that a manifest stays small but still
    identifies the data.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, np.ndarray):
        if value.size <= 16 and value.dtype.kind in "biuf":
            return value.tolist()
        return {"sha256": array_digest(value), "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return to_jsonable(value.to_numpy()) if value.size > 16 else json.loads(value.to_json())
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON (sorted keys), the input of every settings hash."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))


def json_sha256(value: Any) -> str:
    """Full hex SHA-256 of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def derived_seed(*parts: Any) -> int:
    """A stable 31-bit seed from JSON-able ``parts`` (first 4 bytes of their SHA-256, little-endian)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
