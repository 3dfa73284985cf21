"""Append-only results store: one tidy row per (run, metric, stratum).

Layout of a results folder::

    RESULTS/
      manifest.json            versions, seeds, data hashes, configuration (atomic JSON)
      parts/<run_id>.parquet   the rows of one finished run (atomic: tmp file + os.replace)
      predictions/<run_id>.npz test edges (i, j), predictions and targets of that run
      nulls/<dataset>-<hash>.npz  the CGE-matched nulls a grid re-uses

A run is *done* exactly when its part file exists. The part is written last and moved
into place with `os.replace`, which is atomic on POSIX file systems, so a process killed
at any instant (``kill -9``) leaves either no part or a complete one; a restart skips the
done runs and ends with exactly the rows of an uninterrupted run, because every run's
numbers depend only on its `RunSpec` (see `spatiomol.experiments.grid`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.hashing import canonical_json, json_sha256, to_jsonable

#: columns identifying a run (a grid cell); ``run_id`` is a hash of them
KEY_COLUMNS = (
    "dataset",
    "model",
    "split_type",
    "repeat",
    "fold",
    "input",
    "null_index",
    "seed",
    "settings",
)
#: columns describing the outcome of a run, constant over its rows
RUN_COLUMNS = ("run_id", *KEY_COLUMNS, "hyperparameters", "n_parameters", "fit_seconds")
#: one row per metric and stratum
METRIC_COLUMNS = ("metric", "stratum", "value", "n_edges")
COLUMNS = (*RUN_COLUMNS, *METRIC_COLUMNS)

#: packages whose versions every manifest records
TRACKED_PACKAGES = (
    "spatiomol",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "pyarrow",
    "joblib",
    "dask",
    "distributed",
    "pyyaml",
)


# ----------------------------------------------------------------- atomic writes
def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (tmp file + os.replace)."""
    text = json.dumps(to_jsonable(payload), indent=2, sort_keys=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """`numpy.savez_compressed` to ``path`` atomically."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def run_id(key: Mapping[str, Any]) -> str:
    """Stable 20-hex-character id of a run key (the `KEY_COLUMNS` of a run)."""
    missing = [c for c in KEY_COLUMNS if c not in key]
    if missing:
        raise ValueError(f"run key lacks fields {missing}; expected {list(KEY_COLUMNS)}")
    return json_sha256({c: key[c] for c in KEY_COLUMNS})[:20]


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape the numbers (None if absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ------------------------------------------------------------------------ store
class ResultsStore:
    """Append-only store of experiment results in a folder (see module docstring).

    Parameters
    ----------
    root : path
        Results folder; created on first write.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # paths
    @property
    def parts_dir(self) -> Path:
        return self.root / "parts"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    @property
    def nulls_dir(self) -> Path:
        return self.root / "nulls"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def part_path(self, rid: str) -> Path:
        return self.parts_dir / f"{rid}.parquet"

    def prediction_path(self, rid: str) -> Path:
        return self.predictions_dir / f"{rid}.npz"

    # state
    def done_ids(self) -> set[str]:
        """Ids of finished runs (those whose part file exists)."""
        if not self.parts_dir.exists():
            return set()
        return {p.stem for p in self.parts_dir.glob("*.parquet")}

    def is_done(self, rid: str) -> bool:
        return self.part_path(rid).exists()

    # writes
    def write_run(
        self,
        key: Mapping[str, Any],
        metric_rows: Iterable[Mapping[str, Any]],
        *,
        hyperparameters: Mapping[str, Any],
        n_parameters: int,
        fit_seconds: float,
        predictions: Mapping[str, np.ndarray] | None = None,
    ) -> Path:
        """Record one finished run atomically; returns the part file's path.

        Parameters
        ----------
        key : mapping with every field of `KEY_COLUMNS`
        metric_rows : rows ``{metric, stratum, value, n_edges}`` from
            `spatiomol.evaluation.evaluate`.
        hyperparameters : the configuration the model was fitted with (stored as JSON).
        n_parameters : learned parameter count of the fitted model.
        fit_seconds : wall time of selection + fitting, s.
        predictions : optional arrays (e.g. ``i, j, y_pred, y_true``) saved before the
            part so that a done run always has its predictions.
        """
        rid = run_id(key)
        rows = list(metric_rows)
        if not rows:
            raise ValueError(f"run {rid}: no metric rows to store")
        for field in METRIC_COLUMNS:
            if any(field not in r for r in rows):
                raise ValueError(f"run {rid}: metric rows must have field {field!r}")
        if predictions is not None:
            atomic_save_npz(self.prediction_path(rid), **{k: np.asarray(v) for k, v in predictions.items()})
        run_fields = {
            "run_id": rid,
            **{c: key[c] for c in KEY_COLUMNS},
            "hyperparameters": canonical_json(dict(hyperparameters)),
            "n_parameters": int(n_parameters),
            "fit_seconds": float(fit_seconds),
        }
        frame = pd.DataFrame([{**run_fields, **{m: r[m] for m in METRIC_COLUMNS}} for r in rows], columns=list(COLUMNS))
        frame = _coerce(frame)
        path = self.part_path(rid)
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        return path

    # reads
    def load(self) -> pd.DataFrame:
        """All stored rows, in a canonical order (independent of completion order).

        Returns
        -------
        DataFrame with columns `COLUMNS`; ``value`` is float64 (Pearson r, MSE in
        target units², geodesic distance, ... as named by ``metric``).
        """
        files = sorted(self.parts_dir.glob("*.parquet")) if self.parts_dir.exists() else []
        if not files:
            return _coerce(pd.DataFrame(columns=list(COLUMNS)))
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame = _coerce(frame)
        order = [
            "dataset",
            "model",
            "split_type",
            "input",
            "repeat",
            "fold",
            "null_index",
            "run_id",
            "metric",
            "stratum",
        ]
        return frame.sort_values(order, kind="mergesort").reset_index(drop=True)

    def load_predictions(self, rid: str) -> dict[str, np.ndarray]:
        """The arrays saved with run ``rid`` (``i, j, y_pred, y_true``)."""
        path = self.prediction_path(rid)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no predictions stored for run {rid}")
        with np.load(path) as data:
            return {k: data[k] for k in data.files}

    # manifest
    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {}
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.manifest_path}: not valid JSON ({err})") from err

    def write_manifest(
        self,
        config: Mapping[str, Any],
        *,
        datasets: Mapping[str, Any] | None = None,
        seeds: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create or update ``manifest.json`` (atomically).

        The first invocation's configuration is kept as ``config``; each later one with a
        different configuration is appended to ``history`` so a folder never silently
        mixes settings without a record.
        """
        now = datetime.now(UTC).isoformat(timespec="seconds")
        old = self.read_manifest()
        config_json = to_jsonable(dict(config))
        manifest: dict[str, Any] = dict(old) if old else {"created": now, "config": config_json}
        manifest["updated"] = now
        manifest["versions"] = package_versions()
        manifest["command"] = " ".join(sys.argv)
        if old and old.get("config") != config_json:
            history = list(old.get("history", []))
            history.append({"at": now, "config": config_json})
            manifest["history"] = history
        if datasets:
            known = dict(manifest.get("datasets", {}))
            known.update(to_jsonable(dict(datasets)))
            manifest["datasets"] = known
        if seeds:
            manifest["seeds"] = to_jsonable(dict(seeds))
        if extra:
            manifest.update(to_jsonable(dict(extra)))
        atomic_write_json(self.manifest_path, manifest)
        return manifest


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so that parts written in any order concatenate identically."""
    frame = frame.copy()
    for c in ("repeat", "fold", "null_index", "seed", "n_parameters"):
        frame[c] = frame[c].astype("int64")
    for c in ("fit_seconds", "value"):
        frame[c] = frame[c].astype("float64")
    frame["n_edges"] = frame["n_edges"].astype("int64")
    for c in ("run_id", "dataset", "model", "split_type", "input", "settings", "hyperparameters", "metric", "stratum"):
        frame[c] = frame[c].astype(str)
    return frame[list(COLUMNS)]
