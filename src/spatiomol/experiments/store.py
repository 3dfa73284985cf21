"""Append-only results store: one tidy row per (run, metric, stratum).

Layout of a results folder (every path below is built here and nowhere else)::

    RESULTS/
      manifest.json            versions, seeds, data hashes, configuration (atomic JSON)
      parts/<run_id>.parquet   the rows of one finished run (atomic: tmp file + os.replace)
      predictions/<run_id>.npz test edges (i, j), predictions and targets of that run
      models/<run_id>.joblib   the fitted model of that run (only with ``save_models``;
                               format `MODEL_FILE_FORMAT`, `save_model` / `load_model`)
      regions/<dataset>-<hash>.parquet  the region table a dataset's runs used (`REGION_TABLE_COLUMNS`;
                               named in the manifest's ``datasets[d]["regions_file"]``)
      nulls/<dataset>-<hash>-<method>.npz  the nulls of one family a grid re-uses
      splits/<dataset>-<hash>-<kind>.npz  the splits of a grid (for inspection)
      failures/<run_id>.txt    traceback of a run that raised (removed once it succeeds)
      claims/<run_id>.claim    a run being computed: holder pid, host and start time
      explain/<name>/          what `spatiomol explain` wrote about one run

No other module joins paths under a results folder (tests/test_architecture.py checks it);
files the manifest names are given relative to the folder (`relative`, `recorded_path`).

A run is *done* exactly when its part file exists. The part is written last and moved
into place with `os.replace`, which is atomic on POSIX file systems, so a process killed
at any instant (``kill -9``) leaves either no part or a complete one; a restart skips the
done runs and ends with exactly the rows of an uninterrupted run, because every run's
numbers depend only on its `RunSpec` (see `spatiomol.experiments.grid`).

Several processes may work on one folder at once (two ``spatiomol run`` commands, Dask
workers): each run is *claimed* first with a claim file created with ``O_CREAT | O_EXCL``
(atomic: exactly one process creates it), and released after its part is written. A
claim is abandoned (*stale*) when its holder is a dead process on this host or when its
holder has not refreshed it for `CLAIM_STALE_SECONDS` (the holder touches it every
`CLAIM_HEARTBEAT_SECONDS` while it computes); a stale claim is broken and the run is
claimed anew, so nothing is lost when a claimant dies (the claim file protocol:
`spatiomol.experiments.claims`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.data.brain import REGION_COLUMNS
from spatiomol.experiments.claims import CLAIM_STALE_SECONDS as CLAIM_STALE_SECONDS  # re-exported
from spatiomol.experiments.claims import claim_is_stale, create_claim, release_claim
from spatiomol.experiments.config import run_null_family
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
#: columns describing a run, constant over its rows; ``null_family`` labels the null family
#: of a ``"null"`` run (derived from its settings, `spatiomol.experiments.config.null_family_label`;
#: ``""`` for other inputs)
RUN_COLUMNS = (
    "run_id",
    *KEY_COLUMNS,
    "null_family",
    "hyperparameters",
    "n_parameters",
    "fit_seconds",
    "fit_cpu_seconds",
    "training_check",
)
#: columns that measure a run's cost, the only ones that differ when the same run is repeated
TIMING_COLUMNS = ("fit_seconds", "fit_cpu_seconds")
#: `training_check` values: a fit with no training diagnosis (closed-form models, and parts
#: written before the check existed), one that trained, and the prefix of one that did not
#: (followed by the reasons of `spatiomol.models.diagnosis.training_diagnosis`)
CHECK_NONE, CHECK_TRAINED, CHECK_NOT_TRAINED = "n/a", "trained", "not trained"
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

#: format tag of the model files `ResultsStore.save_model` writes
MODEL_FILE_FORMAT = "spatiomol-run-model/1"
#: columns of a stored region table: the region's index in the dataset, then `Brain.regions`' columns
REGION_TABLE_COLUMNS = ("region", *REGION_COLUMNS)

#: how often (s) the holder of a claim refreshes it while its run is computed
CLAIM_HEARTBEAT_SECONDS = 30.0


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


def checked_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run that has a training check, with ``not_trained`` (bool) added.

    ``rows``: results-store rows (one per metric and stratum). Runs without a training
    diagnosis (`CHECK_NONE`: closed-form models, older parts) are left out; an empty frame
    when ``rows`` has no ``training_check`` column.
    """
    if "training_check" not in rows:
        return rows.iloc[0:0].assign(not_trained=pd.Series(dtype=bool))
    runs = rows.drop_duplicates("run_id")
    runs = runs[runs["training_check"].astype(str) != CHECK_NONE]
    return runs.assign(not_trained=runs["training_check"].astype(str).str.startswith(CHECK_NOT_TRAINED))


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
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def nulls_dir(self) -> Path:
        return self.root / "nulls"

    @property
    def splits_dir(self) -> Path:
        return self.root / "splits"

    @property
    def regions_dir(self) -> Path:
        return self.root / "regions"

    @property
    def failures_dir(self) -> Path:
        return self.root / "failures"

    @property
    def explain_dir(self) -> Path:
        return self.root / "explain"

    @property
    def claims_dir(self) -> Path:
        return self.root / "claims"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def part_path(self, rid: str) -> Path:
        return self.parts_dir / f"{rid}.parquet"

    def prediction_path(self, rid: str) -> Path:
        return self.predictions_dir / f"{rid}.npz"

    def model_path(self, rid: str) -> Path:
        """Where run ``rid``'s fitted model is saved (`save_model`)."""
        return self.models_dir / f"{rid}.joblib"

    def failure_path(self, rid: str) -> Path:
        return self.failures_dir / f"{rid}.txt"

    def failure_paths(self) -> list[Path]:
        """The failure records in the folder, sorted (each named by its run id)."""
        return sorted(self.failures_dir.glob("*.txt")) if self.failures_dir.exists() else []

    def regions_path(self, dataset: str, digest: str) -> Path:
        """The region table of ``dataset`` whose content hashes to ``digest``."""
        return self.regions_dir / f"{_file_tag(dataset, digest)}.parquet"

    def explain_path(self, name: str) -> Path:
        """The folder `spatiomol explain` writes one run's explanation to."""
        return self.explain_dir / name

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` (under the folder) relative to the folder, as the manifest records files."""
        return Path(path).relative_to(self.root).as_posix()

    def recorded_path(self, relative: str) -> Path:
        """The path of a file the manifest records relative to the folder (`relative`)."""
        return self.root / relative

    def claim_path(self, rid: str) -> Path:
        return self.claims_dir / f"{rid}.claim"

    def nulls_path(self, dataset: str, nulls_settings: Mapping[str, Any], gene_order: str) -> Path:
        """The cached nulls of ``dataset`` made with one family's ``nulls_settings``.

        Named by dataset, a hash of the settings (one file per family and settings) and
        the family's method.
        """
        settings = dict(nulls_settings)
        method = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(settings.get("method", "")))
        return self.nulls_dir / f"{_file_tag(dataset, settings, gene_order)}-{method}.npz"

    def splits_path(self, dataset: str, kind: str, *, gene_order: str, repeats: int, folds: int, seed: int) -> Path:
        """The saved ``kind`` splits (``repeats`` × ``folds``, ``seed``) of ``dataset``."""
        tag = _file_tag(dataset, gene_order, kind, repeats, folds, seed)
        return self.splits_dir / f"{tag}-{kind}.npz"

    # state
    def done_ids(self) -> set[str]:
        """Ids of finished runs (those whose part file exists)."""
        if not self.parts_dir.exists():
            return set()
        return {p.stem for p in self.parts_dir.glob("*.parquet")}

    def is_done(self, rid: str) -> bool:
        return self.part_path(rid).exists()

    # failures
    def write_failure(self, rid: str, text: str) -> Path:
        """Record why run ``rid`` failed (a traceback); returns the file."""
        path = self.failure_path(rid)
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        return path

    def clear_failure(self, rid: str) -> None:
        """Forget an earlier failure of run ``rid`` (it has now succeeded)."""
        self.failure_path(rid).unlink(missing_ok=True)

    # claims
    @contextmanager
    def claimed(self, rid: str) -> Iterator[bool]:
        """Claim run ``rid`` for this process while the block runs; yields whether it got it.

        The claim file is refreshed every `CLAIM_HEARTBEAT_SECONDS` by a background thread
        and removed on exit. ``False`` means another live process holds the claim.
        """
        token = create_claim(self.claim_path(rid))
        if token is None:
            yield False
            return
        path = self.claim_path(rid)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(CLAIM_HEARTBEAT_SECONDS):
                try:
                    os.utime(path)
                except FileNotFoundError:
                    return

        thread = threading.Thread(target=heartbeat, name=f"claim-{rid}", daemon=True)
        thread.start()
        try:
            yield True
        finally:
            stop.set()
            thread.join()
            release_claim(path, token)

    def claim_active(self, rid: str) -> bool:
        """Whether a live claim on run ``rid`` exists (held by any process, this one included)."""
        path = self.claim_path(rid)
        return path.exists() and not claim_is_stale(path)

    # writes
    def write_run(
        self,
        key: Mapping[str, Any],
        metric_rows: Iterable[Mapping[str, Any]],
        *,
        hyperparameters: Mapping[str, Any],
        n_parameters: int,
        fit_seconds: float,
        training_check: str = CHECK_NONE,
        predictions: Mapping[str, np.ndarray] | None = None,
        fit_cpu_seconds: float = float("nan"),
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
        fit_cpu_seconds : CPU time of this process over the same span, s (`time.process_time`;
            all its threads), so studies can state CPU-hours; NaN when not measured. Exact
            for the runner's processes, which fit one run at a time; a Dask worker running
            several runs in threads of one process counts its neighbours' time too.
        training_check : `CHECK_NONE`, `CHECK_TRAINED`, or `CHECK_NOT_TRAINED` + ": " + the
            reasons (`spatiomol.models.diagnosis.training_diagnosis`) of the final fit.
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
            "null_family": run_null_family(key["settings"], key["input"]),
            "hyperparameters": canonical_json(dict(hyperparameters)),
            "n_parameters": int(n_parameters),
            "fit_seconds": float(fit_seconds),
            "fit_cpu_seconds": float(fit_cpu_seconds),
            "training_check": str(training_check),
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
            "null_family",
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

    # models
    def save_model(self, rid: str, model: Any) -> Path:
        """Save run ``rid``'s fitted model at `model_path` (atomic; joblib, `MODEL_FILE_FORMAT`).

        Neural models (those with ``save`` and a ``load`` class method) are stored through
        their own ``save`` (CPU tensors), any other estimator as a pickle.
        """
        cls = type(model)
        record: dict[str, Any] = {"format": MODEL_FILE_FORMAT, "class": f"{cls.__module__}:{cls.__qualname__}"}
        if _has_own_format(model):
            with tempfile.TemporaryDirectory() as folder:
                record["saved"] = Path(model.save(Path(folder) / "model")).read_bytes()
        else:
            record["model"] = model
        path = self.model_path(rid)
        with atomic_path(path) as tmp:
            joblib.dump(record, tmp)
        return path

    def load_model(self, rid: str) -> Any:
        """The fitted model `save_model` stored for run ``rid``.

        Raises
        ------
        FileNotFoundError
            When the run saved no model (``save_models`` was off, or the run is not done).
        ValueError
            When the file is not a saved run model.
        """
        path = self.model_path(rid)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no model saved for run {rid} (set save_models: true, or refit it with fit_run)"
            )
        record = joblib.load(path)
        if not isinstance(record, dict) or record.get("format") != MODEL_FILE_FORMAT:
            raise ValueError(f"{path}: not a saved run model (field 'format' != {MODEL_FILE_FORMAT!r})")
        if "model" in record:
            return record["model"]
        module, _, qualname = record["class"].partition(":")
        cls = getattr(import_module(module), qualname)
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder) / "model"
            tmp.write_bytes(record["saved"])
            return cls.load(tmp)

    # region tables
    def write_regions(self, dataset: str, regions: pd.DataFrame) -> str:
        """Store the region table of ``dataset`` (a `Brain.regions`); → its path relative to the folder.

        Written once per content (the file name holds the dataset and a hash of the table,
        so two datasets, or two versions of one, never share a file), atomically, with the
        columns `REGION_TABLE_COLUMNS` (``region``: the row's index in the dataset).
        """
        table = regions.loc[:, list(REGION_COLUMNS)].reset_index(drop=True)
        table.insert(0, "region", np.arange(len(table), dtype=np.int64))
        path = self.regions_path(dataset, json_sha256(table.to_dict("list")))
        if not path.exists():
            with atomic_path(path) as tmp:
                table.to_parquet(tmp, index=False)
        return self.relative(path)

    def load_regions(self, dataset: str) -> pd.DataFrame:
        """The region table ``dataset``'s runs used (`write_regions`), in region order.

        Raises
        ------
        FileNotFoundError
            When the manifest records none for ``dataset`` (a folder from before region
            tables were stored) or its file is gone.
        """
        entry = self.read_manifest().get("datasets", {}).get(dataset, {})
        if not entry.get("regions_file"):
            raise FileNotFoundError(
                f"{self.manifest_path}: field 'datasets.{dataset}.regions_file' is absent "
                "(the folder predates stored region tables)"
            )
        path = self.recorded_path(entry["regions_file"])
        if not path.exists():
            raise FileNotFoundError(f"{path}: region table of dataset {dataset!r} named by the manifest is missing")
        return pd.read_parquet(path).sort_values("region").reset_index(drop=True)

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


def _file_tag(dataset: str, *settings: Any) -> str:
    """A file-name-safe tag: the dataset's name plus a hash of the source and settings."""
    digest = json_sha256([dataset, *settings])[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(dataset).name)[:40]
    return f"{safe}-{digest}"


def _has_own_format(model: Any) -> bool:
    # neural models write their own file (state dict, CPU tensors) with save / load
    return callable(getattr(model, "save", None)) and callable(getattr(type(model), "load", None))


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so that parts written in any order concatenate identically."""
    frame = frame.copy()
    if "null_family" not in frame:  # parts written before families had labels
        frame["null_family"] = [run_null_family(s, i) for s, i in zip(frame["settings"], frame["input"])]
    if "training_check" not in frame:  # parts written before fits were checked
        frame["training_check"] = CHECK_NONE
    if "fit_cpu_seconds" not in frame:  # parts written before CPU time was recorded
        frame["fit_cpu_seconds"] = float("nan")
    for c in ("repeat", "fold", "null_index", "seed", "n_parameters"):
        frame[c] = frame[c].astype("int64")
    for c in ("fit_seconds", "fit_cpu_seconds", "value"):
        frame[c] = frame[c].astype("float64")
    frame["n_edges"] = frame["n_edges"].astype("int64")
    text = ("run_id", "dataset", "model", "split_type", "input", "null_family", "settings", "hyperparameters")
    text += ("training_check",)
    for c in (*text, "metric", "stratum"):
        frame[c] = frame[c].astype(str)
    return frame[list(COLUMNS)]
