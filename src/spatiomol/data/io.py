"""Users' own files: read, validate (every problem at once) and turn into a `Brain`.

File formats
------------
expression (CSV)
    Header row ``label,<gene>,<gene>,...``; one row per region, first column the region
    label, then one numeric column per gene symbol. A region without samples is a row
    of empty cells / ``NaN`` (filled or dropped later, see `spatiomol.data.impute`); a
    row must be all numeric or all missing.
connectome (CSV or NPY)
    Square matrix, regions × regions. A CSV may carry labels (a header row and/or a
    first column of labels): they must match the regions file and the matrix is
    reordered to its order. Labels are recognised when the first row / first column
    (after the corner cell) hold exactly the regions file's labels as text, in any
    order — numeric labels such as atlas IDs ``1..n`` included — or else when they are
    not numbers. A bare numeric CSV or an ``.npy`` array is taken to be in the row
    order of the regions file. The diagonal is ignored downstream (it may be
    non-finite, e.g. Fisher-z of r = 1); it is set to 1 on the ``r`` scale and to 0 on
    the other scales.
regions (CSV)
    Columns ``label, hemisphere, structure, network, x, y, z`` (names case-insensitive).
    ``hemisphere`` ∈ {L, R, B} (B: midline/bilateral), ``structure`` ∈ {cortex,
    subcortex, cerebellum}, ``network`` free text (optional, default ``"Unknown"``),
    ``x, y, z`` MNI centroid in mm. The regions file defines the region order.
subjects (NPY, optional)
    Array (n_subjects, n_regions, n_regions) of individual connectomes on the scale of
    the group connectome, in the regions file's order.

Validation
----------
`validate_files` returns every problem found, one message each, naming the file and
the field and saying what was expected. Symmetry tolerance: the connectome is accepted
as symmetric when ``max |Y − Yᵀ| ≤ 1e-6 · max |Y|`` (off-diagonal, finite entries); it
is then symmetrised as ``(Y + Yᵀ) / 2``.
"""

from __future__ import annotations

import csv
import inspect
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from spatiomol.data.brain import HEMISPHERES, STRUCTURES, TARGET_KINDS, TARGET_SCALES, Brain
from spatiomol.hashing import file_sha256

MIN_REGIONS = 8
SYMMETRY_RTOL = 1e-6
REQUIRED_REGION_COLUMNS = ("label", "hemisphere", "structure", "x", "y", "z")
YAML_KEYS = (
    "expression",
    "connectome",
    "regions",
    "subjects",
    "name",
    "target_kind",
    "target_scale",
    "missing",
    "gene_order",
)
_SHOW = 5  # how many offending items a message lists


def _first(items: list[Any], n: int = _SHOW) -> str:
    shown = ", ".join(repr(str(x)) for x in items[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}] ({len(items)} in all)"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _numeric(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strings → float64; empty / NA cells → NaN. Returns (values, mask of unparseable cells)."""
    frame = pd.DataFrame(values)
    out = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    blank = frame.apply(lambda c: c.isna() | c.astype(str).str.strip().isin(["", "nan", "NaN", "NA", "N/A"]))
    bad = np.isnan(out) & ~blank.to_numpy()
    return out, bad


# ----------------------------------------------------------------------------- readers
def read_regions(path: str | PathLike, problems: list[str] | None = None) -> pd.DataFrame | None:
    """Read and check a regions CSV.

    Parameters
    ----------
    path : path-like
        CSV with columns ``label, hemisphere, structure, [network], x, y, z``.
    problems : list, optional
        When given, problems are appended and the best-effort table is returned; when
        None, the first problems raise ``ValueError``.

    Returns
    -------
    DataFrame with columns ``label, hemisphere, structure, network, x, y, z`` (mm), or
    None when the file cannot be read or lacks required columns.
    """
    own = [] if problems is None else problems
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001 - any parse failure is reported as a problem
        own.append(f"regions file {path}: cannot be read as CSV ({err})")
        return _finish(own, problems, None)
    table.columns = [str(c).strip().lower() for c in table.columns]
    absent = [c for c in REQUIRED_REGION_COLUMNS if c not in table.columns]
    if absent:
        own.append(
            f"regions file {path}: missing column(s) {absent}; expected columns "
            f"label, hemisphere, structure, network (optional), x, y, z"
        )
        return _finish(own, problems, None)
    labels = table["label"].str.strip()
    if (labels == "").any():
        own.append(
            f"regions file {path}: field 'label' is empty in rows {_first(list(np.flatnonzero(labels == '') + 2))}"
            " (CSV line numbers); every region needs a label"
        )
    dup = labels[labels.duplicated() & (labels != "")].unique().tolist()
    if dup:
        own.append(f"regions file {path}: field 'label' has duplicate labels {_first(dup)}; labels must be unique")
    hemi = table["hemisphere"].str.strip()
    bad_hemi = sorted(set(hemi) - set(HEMISPHERES))
    if bad_hemi:
        own.append(
            f"regions file {path}: field 'hemisphere' has unknown values {_first(bad_hemi)}; "
            f"expected one of {list(HEMISPHERES)}"
        )
    struct = table["structure"].str.strip()
    bad_struct = sorted(set(struct) - set(STRUCTURES))
    if bad_struct:
        own.append(
            f"regions file {path}: field 'structure' has unknown values {_first(bad_struct)}; "
            f"expected one of {list(STRUCTURES)}"
        )
    coords, unparseable = _numeric(table[["x", "y", "z"]].to_numpy())
    nonfinite = ~np.isfinite(coords).all(axis=1)
    if nonfinite.any():
        rows = np.flatnonzero(nonfinite)
        what = "non-numeric" if unparseable.any() else "non-finite"
        own.append(
            f"regions file {path}: fields 'x', 'y', 'z' have {what} coordinates for regions "
            f"{_first(labels.iloc[rows].tolist())}; expected finite MNI coordinates in mm"
        )
    if len(table) < MIN_REGIONS:
        own.append(f"regions file {path}: {len(table)} regions; at least {MIN_REGIONS} are needed")
    network = table["network"].str.strip() if "network" in table.columns else pd.Series([""] * len(table))
    regions = pd.DataFrame(
        {
            "label": labels.to_numpy(),
            "hemisphere": hemi.to_numpy(),
            "structure": struct.to_numpy(),
            "network": network.replace("", "Unknown").to_numpy(),
            "x": coords[:, 0],
            "y": coords[:, 1],
            "z": coords[:, 2],
        }
    )
    return _finish(own, problems, regions)


def read_expression(
    path: str | PathLike, problems: list[str] | None = None
) -> tuple[list[str], list[str], np.ndarray] | None:
    """Read and check an expression CSV (first column region label, then genes).

    Returns
    -------
    labels : list of str, n_regions
    genes : list of str, n_genes
    X : (n_regions, n_genes) float64 array, NaN rows for regions without samples.
    None when the file cannot be read.

    Checks: duplicate region labels, duplicate or empty gene symbols, non-numeric cells,
    infinite values, rows partly missing, constant genes (over rows with data).
    """
    own = [] if problems is None else problems
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle))
        try:  # fast path: every cell numeric or empty
            body = pd.read_csv(
                path,
                header=None,
                skiprows=1,
                dtype={0: str},
                keep_default_na=False,
                na_values=["", "nan", "NaN", "NA", "N/A"],
            )
            numeric = all(
                pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in body.dtypes.iloc[1:]
            )
        except ValueError:
            numeric = False
        if not numeric:
            body = pd.read_csv(path, header=None, skiprows=1, dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001
        own.append(f"expression file {path}: cannot be read as CSV ({err})")
        return _finish(own, problems, None)
    if len(header) < 2 or body.shape[1] != len(header):
        own.append(
            f"expression file {path}: expected a header 'label,<gene>,...' with at least one gene "
            f"column and rows of the same width; got {len(header)} header fields and rows of "
            f"{body.shape[1]} fields"
        )
        return _finish(own, problems, None)
    genes = [g.strip() for g in header[1:]]
    labels = body.iloc[:, 0].astype(str).str.strip().tolist()
    dup = pd.Series(labels)[pd.Series(labels).duplicated()].unique().tolist()
    if dup:
        own.append(
            f"expression file {path}: column 1 (region label) has duplicate labels {_first(dup)}; labels must be unique"
        )
    dup_genes = pd.Series(genes)[pd.Series(genes).duplicated()].unique().tolist()
    if dup_genes:
        own.append(f"expression file {path}: header has duplicate gene symbols {_first(dup_genes)}")
    if any(g == "" for g in genes):
        own.append(f"expression file {path}: header has empty gene symbols; every column needs a symbol")
    if numeric:
        X = body.iloc[:, 1:].to_numpy(dtype=np.float64)
        unparseable = np.zeros(X.shape, dtype=bool)
    else:
        X, unparseable = _numeric(body.iloc[:, 1:].to_numpy())
    if unparseable.any():
        r, c = np.nonzero(unparseable)
        cells = [f"{labels[a]}/{genes[b]}" for a, b in zip(r, c)]
        own.append(
            f"expression file {path}: non-numeric values in cells (region/gene) {_first(cells)}; "
            "expected numbers or empty cells for regions without samples"
        )
    if np.isinf(X).any():
        r, c = np.nonzero(np.isinf(X))
        own.append(
            f"expression file {path}: infinite values in cells (region/gene) "
            f"{_first([f'{labels[a]}/{genes[b]}' for a, b in zip(r, c)])}"
        )
    nan = np.isnan(X) & ~unparseable
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        own.append(
            f"expression file {path}: regions {_first([labels[k] for k in np.flatnonzero(partial)])} "
            "have some genes missing; a row must be complete or entirely empty (no samples)"
        )
    measured = np.isfinite(X).all(axis=1)
    if measured.sum() >= 2:
        spread = np.ptp(X[measured], axis=0)
        constant = [genes[k] for k in np.flatnonzero(spread == 0)]
        if constant:
            own.append(
                f"expression file {path}: constant genes (same value in every region with data) "
                f"{_first(constant, 10)}; remove them, they carry no information"
            )
    elif X.shape[0] >= 1:
        own.append(f"expression file {path}: {int(measured.sum())} regions have expression; at least 2 are needed")
    return _finish(own, problems, (labels, genes, X))


def read_connectome(
    path: str | PathLike, problems: list[str] | None = None, region_labels: list[str] | None = None
) -> tuple[list[str] | None, np.ndarray] | None:
    """Read a connectome (CSV, labelled or bare, or NPY) and check it is square.

    Parameters
    ----------
    path : path-like
    problems : list, optional
        When given, problems are appended; when None, problems raise ``ValueError``.
    region_labels : list of str, optional
        Labels of the regions file. A CSV whose first row (after the corner cell) and/or
        first column (after the corner cell) hold exactly these labels, as strings in
        any order, is read as labelled, even when the labels are numbers (atlas IDs such
        as ``1..20``); otherwise a header/label column is recognised by non-numeric cells.

    Returns
    -------
    labels : list of str or None
        Region labels from the CSV header/first column (None for bare matrices).
    Y : (n, n) float64 array
    None when the file cannot be read or is not a square matrix.
    """
    own = [] if problems is None else problems
    path = Path(path)
    labels = None
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
            if not np.issubdtype(values.dtype, np.number):
                own.append(f"connectome file {path}: array dtype {values.dtype} is not numeric")
                return _finish(own, problems, None)
            Y = np.asarray(values, dtype=np.float64)
        else:
            raw = layout = None
            if region_labels:
                raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False).to_numpy()
                layout = _label_layout(raw, region_labels)
            if layout is not None:  # labels of the regions file (numeric ones included)
                labels, Y = _labelled_matrix(raw, path, own, layout)
            else:
                try:
                    Y = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
                except ValueError:  # labels or bad cells: parse as text
                    if raw is None:
                        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False).to_numpy()
                    labels, Y = _labelled_matrix(raw, path, own)
    except Exception as err:  # noqa: BLE001
        own.append(f"connectome file {path}: cannot be read ({err})")
        return _finish(own, problems, None)
    if Y is None:
        return _finish(own, problems, None)
    if Y.ndim != 2 or Y.shape[0] != Y.shape[1]:
        own.append(f"connectome file {path}: matrix has shape {Y.shape}; expected a square regions × regions matrix")
        return _finish(own, problems, None)
    return _finish(own, problems, (labels, Y))


def _label_layout(raw: np.ndarray, region_labels: list[str] | None) -> tuple[bool, bool] | None:
    """``(header_row, index_col)`` when the CSV's first row/column hold the regions-file labels.

    Compared as stripped strings, as a set (any order): first row[1:] and first
    column[1:] for a matrix labelled on both sides, the whole first row (header only) or
    the whole first column (label column only) otherwise. None when no layout matches.
    """
    if not region_labels or raw.ndim != 2 or raw.shape[0] < 2 or raw.shape[1] < 2:
        return None
    reference = sorted(str(x).strip() for x in region_labels)
    n = len(reference)

    def same(cells: np.ndarray) -> bool:
        return len(cells) == n and sorted(str(x).strip() for x in cells) == reference

    rows, cols = raw.shape
    if rows == n + 1 and cols == n + 1 and same(raw[0, 1:]) and same(raw[1:, 0]):
        return True, True
    if rows == n + 1 and cols == n and same(raw[0, :]):
        return True, False
    if rows == n and cols == n + 1 and same(raw[:, 0]):
        return False, True
    return None


def _labelled_matrix(
    raw: np.ndarray, path: Path, own: list[str], layout: tuple[bool, bool] | None = None
) -> tuple[list[str] | None, np.ndarray | None]:
    if layout is not None:
        header_row, index_col = layout
    else:
        header_row = not all(_is_number(x) for x in raw[0, 1:] if x.strip())
        index_col = not all(_is_number(x) for x in raw[1:, 0] if x.strip())
    row_labels = col_labels = None
    if header_row:
        col_labels = [x.strip() for x in (raw[0, 1:] if index_col else raw[0])]
        raw = raw[1:]
    if index_col:
        row_labels = [x.strip() for x in raw[:, 0]]
        raw = raw[:, 1:]
    Y, unparseable = _numeric(raw)
    if unparseable.any():
        r, c = np.nonzero(unparseable)
        own.append(
            f"connectome file {path}: non-numeric values at (row, column) "
            f"{_first([(int(a) + 1, int(b) + 1) for a, b in zip(r, c)])}; expected numbers"
        )
    labels = row_labels or col_labels
    if row_labels and col_labels and row_labels != col_labels:
        differ = [f"{a}/{b}" for a, b in zip(row_labels, col_labels) if a != b]
        if len(row_labels) != len(col_labels):
            differ.append(f"{len(row_labels)} row labels vs {len(col_labels)} column labels")
        own.append(
            f"connectome file {path}: row labels and column labels differ (row/column) {_first(differ)}; "
            "expected the same labels in the same order"
        )
    if labels is not None:
        dup = pd.Series(labels)[pd.Series(labels).duplicated()].unique().tolist()
        if dup:
            own.append(f"connectome file {path}: duplicate region labels {_first(dup)}; labels must be unique")
    return labels, Y


def read_subjects(path: str | PathLike, problems: list[str] | None = None) -> np.ndarray | None:
    """Read a subject stack (NPY, n_subjects × n_regions × n_regions)."""
    own = [] if problems is None else problems
    path = Path(path)
    try:
        stack = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        own.append(f"subjects file {path}: cannot be read as .npy ({err})")
        return _finish(own, problems, None)
    if not np.issubdtype(stack.dtype, np.number):
        own.append(f"subjects file {path}: array dtype {stack.dtype} is not numeric")
        return _finish(own, problems, None)
    return _finish(own, problems, np.asarray(stack, dtype=np.float64))


def _finish(own: list[str], problems: list[str] | None, value: Any) -> Any:
    if problems is None and own:
        raise ValueError("\n".join(own))
    return value


# -------------------------------------------------------------------------- validation
@dataclass
class _Checked:
    """Everything read from a user's files, and the problems found."""

    problems: list[str] = field(default_factory=list)
    regions: pd.DataFrame | None = None
    genes: list[str] | None = None
    X: np.ndarray | None = None
    Y: np.ndarray | None = None
    subjects: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _label_mismatch(kind: str, path: Path, labels: list[str], reference: list[str], regions_path: Path) -> str | None:
    extra = [x for x in labels if x not in set(reference)]
    absent = [x for x in reference if x not in set(labels)]
    if not extra and not absent:
        return None
    parts = []
    if extra:
        parts.append(f"labels not in the regions file {_first(extra)}")
    if absent:
        parts.append(f"regions-file labels absent here {_first(absent)}")
    return f"{kind} file {path}: region labels do not match regions file {regions_path}: " + "; ".join(parts)


def _check_matrix(
    kind: str,
    path: Path,
    Y: np.ndarray,
    labels: list[str],
    problems: list[str],
    target_scale: str | None,
    where: str = "",
) -> None:
    off = ~np.eye(Y.shape[-1], dtype=bool)
    values = Y[off]
    bad = ~np.isfinite(Y) & off
    if bad.any():
        r, c = np.nonzero(bad | bad.T)
        pairs = [f"{labels[a]} / {labels[b]}" for a, b in zip(r, c) if a < b]
        problems.append(
            f"{kind} file {path}{where}: non-finite values (NaN/inf) off the diagonal at region pairs "
            f"{_first(pairs)}; expected finite numbers"
        )
    finite = np.where(np.isfinite(Y) & off, Y, 0.0)
    scale = np.abs(finite).max() if finite.size else 0.0
    asym = np.abs(finite - finite.T)
    if asym.max() > SYMMETRY_RTOL * scale:
        a, b = np.unravel_index(int(np.argmax(asym)), asym.shape)
        problems.append(
            f"{kind} file {path}{where}: matrix is not symmetric: max |Y - Y.T| = {asym.max():.3g} "
            f"at ({labels[a]!r}, {labels[b]!r}) exceeds the tolerance 1e-6 × max |Y| = "
            f"{SYMMETRY_RTOL * scale:.3g}"
        )
    if target_scale == "r" and np.isfinite(values).any() and np.nanmax(np.abs(values[np.isfinite(values)])) > 1.0:
        problems.append(
            f"{kind} file {path}{where}: values outside [-1, 1] (max |Y| = "
            f"{np.nanmax(np.abs(values[np.isfinite(values)])):.3g}) but target_scale is 'r' (Pearson r); "
            "set target_scale to 'fisher_z' or 'raw'"
        )


def _read_and_check(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None = None,
    *,
    target_kind: str = "fc",
    target_scale: str = "r",
) -> _Checked:
    out = _Checked()
    problems = out.problems
    if target_kind not in TARGET_KINDS:
        problems.append(f"field 'target_kind': {target_kind!r}; expected one of {list(TARGET_KINDS)}")
    if target_scale not in TARGET_SCALES:
        problems.append(f"field 'target_scale': {target_scale!r}; expected one of {list(TARGET_SCALES)}")
    paths = {"expression": Path(expression), "connectome": Path(connectome), "regions": Path(regions)}
    if subjects is not None:
        paths["subjects"] = Path(subjects)
    for role, p in paths.items():
        if not p.is_file():
            problems.append(f"{role} file {p}: does not exist")
    if any(not p.is_file() for p in paths.values()):
        return out

    table = read_regions(paths["regions"], problems)
    ref = table["label"].tolist() if table is not None else None
    n = len(ref) if ref is not None else None

    expr = read_expression(paths["expression"], problems)
    if expr is not None and ref is not None:
        labels, genes, X = expr
        msg = _label_mismatch("expression", paths["expression"], labels, ref, paths["regions"])
        if msg:
            problems.append(msg)
        elif len(set(labels)) == len(labels):
            row = {x: k for k, x in enumerate(labels)}
            order = [row[x] for x in ref]
            out.notes["expression_reordered"] = order != list(range(len(order)))
            out.X, out.genes = X[order], genes

    con = read_connectome(paths["connectome"], problems, region_labels=ref)
    if con is not None and ref is not None:
        labels, Y = con
        if labels is None:
            if Y.shape[0] != n:
                problems.append(
                    f"connectome file {paths['connectome']}: matrix is {Y.shape[0]} × {Y.shape[1]} "
                    f"but the regions file {paths['regions']} has {n} regions; expected {n} × {n} "
                    "in the regions file's order"
                )
                Y = None
        else:
            msg = _label_mismatch("connectome", paths["connectome"], labels, ref, paths["regions"])
            if msg:
                problems.append(msg)
                Y = None
            elif len(set(labels)) == len(labels) and len(labels) == Y.shape[0]:
                row = {x: k for k, x in enumerate(labels)}
                order = [row[x] for x in ref]
                out.notes["connectome_reordered"] = order != list(range(len(order)))
                Y = Y[np.ix_(order, order)]
            else:
                Y = None
        if Y is not None:
            _check_matrix("connectome", paths["connectome"], Y, ref, problems, target_scale)
            out.Y = Y

    if "subjects" in paths:
        stack = read_subjects(paths["subjects"], problems)
        if stack is not None and n is not None:
            if stack.ndim != 3 or stack.shape[1:] != (n, n):
                problems.append(
                    f"subjects file {paths['subjects']}: stack has shape {stack.shape}; expected "
                    f"(n_subjects, {n}, {n}) to match the {n} regions of {paths['regions']}"
                )
            else:
                for s in range(stack.shape[0]):
                    before = len(problems)
                    _check_matrix(
                        "subjects", paths["subjects"], stack[s], ref, problems, target_scale, where=f" (subject {s})"
                    )
                    if len(problems) > before:
                        break  # one subject's problems are enough to show the pattern
                out.subjects = stack
    out.regions = table
    out.notes["files"] = {role: {"path": str(p.resolve()), "sha256": file_sha256(p)} for role, p in paths.items()}
    return out


def validate_files(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None = None,
    *,
    target_kind: str = "fc",
    target_scale: str = "r",
) -> list[str]:
    """Check a user's files and return every problem found (empty list: all good).

    Parameters
    ----------
    expression, connectome, regions : path-like
        See the module docstring for the formats.
    subjects : path-like, optional
        NPY stack (n_subjects, n_regions, n_regions).
    target_kind : {"fc", "sc"}
    target_scale : {"r", "fisher_z", "raw"}
        With ``"r"``, off-diagonal values outside [-1, 1] are a problem.

    Returns
    -------
    list of str
        One message per problem, each naming the file, the field and what was expected.
    """
    return _read_and_check(
        expression, connectome, regions, subjects, target_kind=target_kind, target_scale=target_scale
    ).problems


def _set_diagonal(Y: np.ndarray, target_scale: str) -> np.ndarray:
    Y = (Y + np.swapaxes(Y, -1, -2)) / 2.0
    idx = np.arange(Y.shape[-1])
    if target_scale == "r":
        Y[..., idx, idx] = 1.0
    else:
        diag = Y[..., idx, idx]
        Y[..., idx, idx] = np.where(np.isfinite(diag), diag, 0.0)
    return Y


def load_user_brain(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None = None,
    *,
    name: str | None = None,
    target_kind: str = "fc",
    target_scale: str = "r",
    missing: str = "mirror-interpolate",
    gene_order: str = "as_given",
    seed: int = 0,
    mirror: str | PathLike | None = None,
) -> Brain:
    """Read, validate and assemble a user's files into a `Brain`.

    Parameters
    ----------
    expression, connectome, regions, subjects : path-like
        See the module docstring.
    name : str, optional
        Dataset name (default: the expression file's stem).
    target_kind, target_scale : str
        Kind (``fc``/``sc``) and scale (``r``/``fisher_z``/``raw``) of the connectome.
    missing : {"mirror-interpolate", "drop", "keep"}
        Remedy for regions with no expression (see `spatiomol.data.impute`).
    gene_order : {"as_given", "tss", "random", "mean_expression"}
    seed : int
        Seed for ``gene_order="random"``.
    mirror : path-like, optional
        Mirror folder for the bundled gene-position table (``gene_order="tss"``).

    Returns
    -------
    Brain
        Regions in the regions file's order; ``Y`` symmetrised with the diagonal set
        (1 on the ``r`` scale, else non-finite → 0); provenance lists files and hashes.

    Raises
    ------
    ValueError
        Listing every problem `validate_files` finds.
    """
    from spatiomol.data.genome import order_genes
    from spatiomol.data.impute import fill_missing

    checked = _read_and_check(
        expression, connectome, regions, subjects, target_kind=target_kind, target_scale=target_scale
    )
    if checked.problems:
        raise ValueError(f"{len(checked.problems)} problem(s) in the input files:\n- " + "\n- ".join(checked.problems))
    provenance = {
        "source": "user files",
        "files": checked.notes["files"],
        "validation": {
            "symmetry_tolerance": "max |Y - Y.T| <= 1e-6 * max |Y| (off-diagonal), then (Y + Y.T) / 2",
            "expression_reordered_to_regions_file": checked.notes.get("expression_reordered", False),
            "connectome_reordered_to_regions_file": checked.notes.get("connectome_reordered", False),
        },
        "diagonal": "set to 1 (r scale)" if target_scale == "r" else "kept; non-finite entries set to 0",
    }
    brain = Brain(
        name=name or Path(expression).stem,
        regions=checked.regions,
        X=checked.X,
        genes=tuple(checked.genes),
        Y=_set_diagonal(checked.Y, target_scale),
        target_kind=target_kind,
        target_scale=target_scale,
        subjects=None if checked.subjects is None else _set_diagonal(checked.subjects, target_scale),
        provenance=provenance,
    )
    missing_rows = np.flatnonzero(np.isnan(brain.X).all(axis=1))
    brain = brain.with_note("expression_missing", [str(brain.labels[k]) for k in missing_rows])
    brain = fill_missing(brain, missing)
    return order_genes(brain, gene_order, seed=seed, mirror=mirror)


def _check_options(options: dict[str, Any], loader: Any, what: str) -> None:
    """ValueError naming any option ``loader`` does not take as a keyword-only argument."""
    accepted = [p.name for p in inspect.signature(loader).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"load_brain({what}): unknown option(s) {unknown}; accepted options: {accepted}")


def load_brain(source: str | PathLike, **options: Any) -> Brain:
    """A `Brain` from a bundled dataset name or a YAML file naming the user's files.

    Parameters
    ----------
    source : str or path-like
        A name from `spatiomol.data.datasets.list_datasets` (e.g. ``"hcp-s100"``), or a
        path to a YAML file with keys ``expression``, ``connectome``, ``regions``
        (required), ``subjects``, ``name``, ``target_kind``, ``target_scale``,
        ``missing``, ``gene_order`` (optional). Relative paths in the YAML are relative to
        the YAML file's folder.
    **options
        Passed on to `spatiomol.data.datasets.load_dataset` (bundled names: ``missing``,
        ``gene_order``, ``seed``, ``mirror``, ``fc_scale``, ``n_neighbors``) or
        `load_user_brain` (YAML: ``name``, ``target_kind``, ``target_scale``,
        ``missing``, ``gene_order``, ``seed``, ``mirror``); they override the YAML's
        values.

    Returns
    -------
    Brain

    Raises
    ------
    ValueError
        Unknown source, bad YAML, or an option the loader does not accept (the message
        names it and lists the accepted ones).
    """
    from spatiomol.data import datasets

    if isinstance(source, str) and source in datasets.list_datasets():
        _check_options(options, datasets.load_dataset, f"bundled dataset {source!r}")
        return datasets.load_dataset(source, **options)
    path = Path(source)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        raise ValueError(
            f"{source!r} is neither a bundled dataset {datasets.list_datasets()} nor an existing "
            "YAML file (.yaml/.yml) naming expression, connectome and regions files"
        )
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping with keys {list(YAML_KEYS)}")
    unknown = sorted(set(spec) - set(YAML_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; expected keys {list(YAML_KEYS)}")
    absent = [k for k in ("expression", "connectome", "regions") if not spec.get(k)]
    if absent:
        raise ValueError(f"{path}: missing required key(s) {absent} (paths to the user's files)")
    files = {
        k: (path.parent / str(spec[k])) for k in ("expression", "connectome", "regions", "subjects") if spec.get(k)
    }
    _check_options(options, load_user_brain, f"{path}")
    kwargs = {k: spec[k] for k in ("name", "target_kind", "target_scale", "missing", "gene_order") if k in spec}
    kwargs.update(options)
    brain = load_user_brain(files["expression"], files["connectome"], files["regions"], files.get("subjects"), **kwargs)
    return brain.with_note("spec", {"path": str(path.resolve()), "sha256": file_sha256(path)})
