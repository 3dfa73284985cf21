"""Validation of users' files: read them all and report every problem at once.

Validation
----------
`validate_files` returns every problem found, one message each, naming the file and
the field and saying what was expected. Symmetry tolerance: the connectome is accepted
as symmetric when ``max |Y − Yᵀ| ≤ 1e-6 · max |Y|`` (off-diagonal, finite entries); it
is then symmetrised as ``(Y + Yᵀ) / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import TARGET_KINDS, TARGET_SCALES
from spatiomol.data.readers import format_items, read_connectome, read_expression, read_regions, read_subjects
from spatiomol.hashing import file_sha256

SYMMETRY_RTOL = 1e-6


@dataclass
class CheckedFiles:
    """Everything read from a user's files, and the problems found."""

    problems: list[str] = field(default_factory=list)
    regions: pd.DataFrame | None = None
    genes: list[str] | None = None
    X: np.ndarray | None = None
    Y: np.ndarray | None = None
    subjects: np.ndarray | None = None
    structural: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _label_mismatch(kind: str, path: Path, labels: list[str], reference: list[str], regions_path: Path) -> str | None:
    extra = [x for x in labels if x not in set(reference)]
    absent = [x for x in reference if x not in set(labels)]
    if not extra and not absent:
        return None
    parts = []
    if extra:
        parts.append(f"labels not in the regions file {format_items(extra)}")
    if absent:
        parts.append(f"regions-file labels absent here {format_items(absent)}")
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
            f"{format_items(pairs)}; expected finite numbers"
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


def _input_paths(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None,
    structural: str | PathLike | None = None,
) -> dict[str, Path]:
    """The given files by role (``subjects`` and ``structural`` only when given)."""
    paths = {"expression": Path(expression), "connectome": Path(connectome), "regions": Path(regions)}
    if subjects is not None:
        paths["subjects"] = Path(subjects)
    if structural is not None:
        paths["structural"] = Path(structural)
    return paths


def _reference_order(labels: list[str], reference: list[str]) -> list[int]:
    """Row of each reference label in ``labels`` (which hold the same labels, each once)."""
    row = {x: k for k, x in enumerate(labels)}
    return [row[x] for x in reference]


def _add_expression(out: CheckedFiles, paths: dict[str, Path], ref: list[str] | None) -> None:
    """Read the expression file into ``out``, rows in the regions file's order."""
    expr = read_expression(paths["expression"], out.problems)
    if expr is None or ref is None:
        return
    labels, genes, X = expr
    msg = _label_mismatch("expression", paths["expression"], labels, ref, paths["regions"])
    if msg:
        out.problems.append(msg)
    elif len(set(labels)) == len(labels):
        order = _reference_order(labels, ref)
        out.notes["expression_reordered"] = order != list(range(len(order)))
        out.X, out.genes = X[order], genes


def _read_square(
    out: CheckedFiles, role: str, path: Path, ref: list[str] | None, regions_path: Path, target_scale: str | None
) -> np.ndarray | None:
    """Read and check a region × region matrix (connectome or structural), in the regions file's order."""
    problems = out.problems
    con = read_connectome(path, problems, region_labels=ref)
    if con is None or ref is None:
        return None
    labels, Y = con
    n = len(ref)
    if labels is None:
        if Y.shape[0] != n:
            problems.append(
                f"{role} file {path}: matrix is {Y.shape[0]} × {Y.shape[1]} "
                f"but the regions file {regions_path} has {n} regions; expected {n} × {n} "
                "in the regions file's order"
            )
            return None
    else:
        msg = _label_mismatch(role, path, labels, ref, regions_path)
        if msg:
            problems.append(msg)
            return None
        if len(set(labels)) != len(labels) or len(labels) != Y.shape[0]:
            return None
        order = _reference_order(labels, ref)
        out.notes[f"{role}_reordered"] = order != list(range(len(order)))
        Y = Y[np.ix_(order, order)]
    before = len(problems)
    _check_matrix(role, path, Y, ref, problems, target_scale)
    return Y if role == "connectome" or len(problems) == before else None


def _add_connectome(out: CheckedFiles, paths: dict[str, Path], ref: list[str] | None, target_scale: str) -> None:
    """Read and check the connectome file into ``out``, in the regions file's order."""
    Y = _read_square(out, "connectome", paths["connectome"], ref, paths["regions"], target_scale)
    if Y is not None:
        out.Y = Y


def _add_structural(out: CheckedFiles, paths: dict[str, Path], ref: list[str] | None) -> None:
    """Read and check the structural connectivity (an input, any scale) when one was given:
    square in the regions file's labels, finite off the diagonal, symmetric."""
    if "structural" in paths:
        out.structural = _read_square(out, "structural", paths["structural"], ref, paths["regions"], None)


def _add_subjects(out: CheckedFiles, paths: dict[str, Path], ref: list[str] | None, target_scale: str) -> None:
    """Read and check the subject stack into ``out`` when a subjects file was given."""
    if "subjects" not in paths:
        return
    problems = out.problems
    stack = read_subjects(paths["subjects"], problems)
    if stack is None or ref is None:
        return
    n = len(ref)
    if stack.ndim != 3 or stack.shape[1:] != (n, n):
        problems.append(
            f"subjects file {paths['subjects']}: stack has shape {stack.shape}; expected "
            f"(n_subjects, {n}, {n}) to match the {n} regions of {paths['regions']}"
        )
        return
    for s in range(stack.shape[0]):
        before = len(problems)
        _check_matrix("subjects", paths["subjects"], stack[s], ref, problems, target_scale, where=f" (subject {s})")
        if len(problems) > before:
            break  # one subject's problems are enough to show the pattern
    out.subjects = stack


def read_and_check(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None = None,
    *,
    target_kind: str = "fc",
    target_scale: str = "r",
    structural: str | PathLike | None = None,
) -> CheckedFiles:
    """Read a user's files, check them and collect every problem found.

    Parameters are those of `validate_files`.

    Returns
    -------
    CheckedFiles
        The problems, and what could be read, in the regions file's order; when a file
        is missing only the problems (nothing is read).
    """
    out = CheckedFiles()
    problems = out.problems
    if target_kind not in TARGET_KINDS:
        problems.append(f"field 'target_kind': {target_kind!r}; expected one of {list(TARGET_KINDS)}")
    if target_scale not in TARGET_SCALES:
        problems.append(f"field 'target_scale': {target_scale!r}; expected one of {list(TARGET_SCALES)}")
    paths = _input_paths(expression, connectome, regions, subjects, structural)
    for role, p in paths.items():
        if not p.is_file():
            problems.append(f"{role} file {p}: does not exist")
    if any(not p.is_file() for p in paths.values()):
        return out

    table = read_regions(paths["regions"], problems)
    ref = table["label"].tolist() if table is not None else None
    _add_expression(out, paths, ref)
    _add_connectome(out, paths, ref, target_scale)
    _add_subjects(out, paths, ref, target_scale)
    _add_structural(out, paths, ref)
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
    structural: str | PathLike | None = None,
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
    structural : path-like, optional
        Structural connectivity, an input modality (CSV like the connectome, any scale):
        its labels must match the regions file, its off-diagonal values be finite and the
        matrix symmetric.

    Returns
    -------
    list of str
        One message per problem, each naming the file, the field and what was expected.
    """
    return read_and_check(
        expression,
        connectome,
        regions,
        subjects,
        target_kind=target_kind,
        target_scale=target_scale,
        structural=structural,
    ).problems
