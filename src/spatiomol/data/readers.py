"""Readers of users' files: regions, expression, connectome and subject stacks.

Each reader either raises ``ValueError`` on the first problems or, given a ``problems``
list, appends every problem it finds (naming the file and field, and what was expected)
and returns its best-effort result; `spatiomol.data.validation` collects them all.


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
"""

from __future__ import annotations

import csv
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import HEMISPHERES, STRUCTURES

MIN_REGIONS = 8
REQUIRED_REGION_COLUMNS = ("label", "hemisphere", "structure", "x", "y", "z")
_SHOW = 5  # how many offending items a message lists


def format_items(items: list[Any], n: int = _SHOW) -> str:
    """The first ``n`` items, quoted, and how many there are in all (for error messages)."""
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
        return finish(own, problems, None)
    table.columns = [str(c).strip().lower() for c in table.columns]
    absent = [c for c in REQUIRED_REGION_COLUMNS if c not in table.columns]
    if absent:
        own.append(
            f"regions file {path}: missing column(s) {absent}; expected columns "
            f"label, hemisphere, structure, network (optional), x, y, z"
        )
        return finish(own, problems, None)
    labels = table["label"].str.strip()
    if (labels == "").any():
        own.append(
            f"regions file {path}: field 'label' is empty in rows "
            f"{format_items(list(np.flatnonzero(labels == '') + 2))} (CSV line numbers); every region needs a label"
        )
    dup = labels[labels.duplicated() & (labels != "")].unique().tolist()
    if dup:
        own.append(
            f"regions file {path}: field 'label' has duplicate labels {format_items(dup)}; labels must be unique"
        )
    hemi = table["hemisphere"].str.strip()
    bad_hemi = sorted(set(hemi) - set(HEMISPHERES))
    if bad_hemi:
        own.append(
            f"regions file {path}: field 'hemisphere' has unknown values {format_items(bad_hemi)}; "
            f"expected one of {list(HEMISPHERES)}"
        )
    struct = table["structure"].str.strip()
    bad_struct = sorted(set(struct) - set(STRUCTURES))
    if bad_struct:
        own.append(
            f"regions file {path}: field 'structure' has unknown values {format_items(bad_struct)}; "
            f"expected one of {list(STRUCTURES)}"
        )
    coords, unparseable = _numeric(table[["x", "y", "z"]].to_numpy())
    nonfinite = ~np.isfinite(coords).all(axis=1)
    if nonfinite.any():
        rows = np.flatnonzero(nonfinite)
        what = "non-numeric" if unparseable.any() else "non-finite"
        own.append(
            f"regions file {path}: fields 'x', 'y', 'z' have {what} coordinates for regions "
            f"{format_items(labels.iloc[rows].tolist())}; expected finite MNI coordinates in mm"
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
    return finish(own, problems, regions)


def _read_expression_table(path: Path) -> tuple[list[str], pd.DataFrame, bool]:
    """Read an expression CSV: its header fields, its body, and whether every gene column parsed as numbers."""
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
        numeric = all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in body.dtypes.iloc[1:])
    except ValueError:
        numeric = False
    if not numeric:
        body = pd.read_csv(path, header=None, skiprows=1, dtype=str, keep_default_na=False)
    return header, body, numeric


def _check_expression_names(path: Path, labels: list[str], genes: list[str], own: list[str]) -> None:
    """Append problems with an expression file's region labels and gene symbols to ``own``."""
    dup = pd.Series(labels)[pd.Series(labels).duplicated()].unique().tolist()
    if dup:
        own.append(
            f"expression file {path}: column 1 (region label) has duplicate labels {format_items(dup)}; "
            "labels must be unique"
        )
    dup_genes = pd.Series(genes)[pd.Series(genes).duplicated()].unique().tolist()
    if dup_genes:
        own.append(f"expression file {path}: header has duplicate gene symbols {format_items(dup_genes)}")
    if any(g == "" for g in genes):
        own.append(f"expression file {path}: header has empty gene symbols; every column needs a symbol")


def _expression_values(body: pd.DataFrame, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """The gene columns as float64, and the mask of cells that are not numbers."""
    if numeric:
        X = body.iloc[:, 1:].to_numpy(dtype=np.float64)
        return X, np.zeros(X.shape, dtype=bool)
    return _numeric(body.iloc[:, 1:].to_numpy())


def _check_expression_cells(
    path: Path, labels: list[str], genes: list[str], X: np.ndarray, unparseable: np.ndarray, own: list[str]
) -> None:
    """Append problems with individual expression cells (non-numeric, infinite, partly missing rows) to ``own``."""
    if unparseable.any():
        r, c = np.nonzero(unparseable)
        cells = [f"{labels[a]}/{genes[b]}" for a, b in zip(r, c)]
        own.append(
            f"expression file {path}: non-numeric values in cells (region/gene) {format_items(cells)}; "
            "expected numbers or empty cells for regions without samples"
        )
    if np.isinf(X).any():
        r, c = np.nonzero(np.isinf(X))
        own.append(
            f"expression file {path}: infinite values in cells (region/gene) "
            f"{format_items([f'{labels[a]}/{genes[b]}' for a, b in zip(r, c)])}"
        )
    nan = np.isnan(X) & ~unparseable
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        own.append(
            f"expression file {path}: regions {format_items([labels[k] for k in np.flatnonzero(partial)])} "
            "have some genes missing; a row must be complete or entirely empty (no samples)"
        )


def _check_expression_genes(path: Path, genes: list[str], X: np.ndarray, own: list[str]) -> None:
    """Append constant genes, or too few regions with expression, to ``own``."""
    measured = np.isfinite(X).all(axis=1)
    if measured.sum() >= 2:
        spread = np.ptp(X[measured], axis=0)
        constant = [genes[k] for k in np.flatnonzero(spread == 0)]
        if constant:
            own.append(
                f"expression file {path}: constant genes (same value in every region with data) "
                f"{format_items(constant, 10)}; remove them, they carry no information"
            )
    elif X.shape[0] >= 1:
        own.append(f"expression file {path}: {int(measured.sum())} regions have expression; at least 2 are needed")


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
        header, body, numeric = _read_expression_table(path)
    except Exception as err:  # noqa: BLE001
        own.append(f"expression file {path}: cannot be read as CSV ({err})")
        return finish(own, problems, None)
    if len(header) < 2 or body.shape[1] != len(header):
        own.append(
            f"expression file {path}: expected a header 'label,<gene>,...' with at least one gene "
            f"column and rows of the same width; got {len(header)} header fields and rows of "
            f"{body.shape[1]} fields"
        )
        return finish(own, problems, None)
    genes = [g.strip() for g in header[1:]]
    labels = body.iloc[:, 0].astype(str).str.strip().tolist()
    _check_expression_names(path, labels, genes, own)
    X, unparseable = _expression_values(body, numeric)
    _check_expression_cells(path, labels, genes, X, unparseable, own)
    _check_expression_genes(path, genes, X, own)
    return finish(own, problems, (labels, genes, X))


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
                return finish(own, problems, None)
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
        return finish(own, problems, None)
    if Y is None:
        return finish(own, problems, None)
    if Y.ndim != 2 or Y.shape[0] != Y.shape[1]:
        own.append(f"connectome file {path}: matrix has shape {Y.shape}; expected a square regions × regions matrix")
        return finish(own, problems, None)
    return finish(own, problems, (labels, Y))


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
            f"{format_items([(int(a) + 1, int(b) + 1) for a, b in zip(r, c)])}; expected numbers"
        )
    labels = row_labels or col_labels
    if row_labels and col_labels and row_labels != col_labels:
        differ = [f"{a}/{b}" for a, b in zip(row_labels, col_labels) if a != b]
        if len(row_labels) != len(col_labels):
            differ.append(f"{len(row_labels)} row labels vs {len(col_labels)} column labels")
        own.append(
            f"connectome file {path}: row labels and column labels differ (row/column) {format_items(differ)}; "
            "expected the same labels in the same order"
        )
    if labels is not None:
        dup = pd.Series(labels)[pd.Series(labels).duplicated()].unique().tolist()
        if dup:
            own.append(f"connectome file {path}: duplicate region labels {format_items(dup)}; labels must be unique")
    return labels, Y


def read_subjects(path: str | PathLike, problems: list[str] | None = None) -> np.ndarray | None:
    """Read a subject stack (NPY, n_subjects × n_regions × n_regions)."""
    own = [] if problems is None else problems
    path = Path(path)
    try:
        stack = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        own.append(f"subjects file {path}: cannot be read as .npy ({err})")
        return finish(own, problems, None)
    if not np.issubdtype(stack.dtype, np.number):
        own.append(f"subjects file {path}: array dtype {stack.dtype} is not numeric")
        return finish(own, problems, None)
    return finish(own, problems, np.asarray(stack, dtype=np.float64))


def finish(own: list[str], problems: list[str] | None, value: Any) -> Any:
    """``value``, or a ``ValueError`` listing ``own`` when no ``problems`` list collects them."""
    if problems is None and own:
        raise ValueError("\n".join(own))
    return value
