"""Loading: a user's files or a dataset YAML (or a bundled name) as a `Brain`.

Dataset YAML
------------
Keys ``expression``, ``connectome``, ``regions`` (required; paths relative to the YAML's
folder), ``subjects``, ``name``, ``target_kind``, ``target_scale``, ``missing``,
``gene_order`` (optional). File formats: `spatiomol.data.readers`; checks:
`spatiomol.data.validation`.
"""

from __future__ import annotations

import inspect
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from spatiomol.data.brain import Brain
from spatiomol.data.bundled_files import list_datasets
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import order_genes
from spatiomol.data.impute import fill_missing
from spatiomol.data.validation import read_and_check
from spatiomol.hashing import file_sha256

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
    checked = read_and_check(
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


def read_dataset_yaml(path: str | PathLike) -> tuple[dict[str, Any], dict[str, Path]]:
    """Parse and check a dataset YAML.

    Parameters
    ----------
    path : path-like
        YAML file with the keys of `YAML_KEYS` (``expression``, ``connectome``,
        ``regions`` required).

    Returns
    -------
    spec : dict
        The YAML's mapping as written.
    files : dict role → Path
        ``expression``, ``connectome``, ``regions`` and, when given, ``subjects``; relative
        paths are taken from the YAML file's folder.

    Raises
    ------
    ValueError
        Invalid YAML, not a mapping, unknown keys or missing required keys (naming the file).
    """
    path = Path(path)
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
    return spec, files


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
        A name from `spatiomol.data.bundled_files.list_datasets` (e.g. ``"hcp-s100"``), or a
        path to a YAML file with keys ``expression``, ``connectome``, ``regions``
        (required), ``subjects``, ``name``, ``target_kind``, ``target_scale``,
        ``missing``, ``gene_order`` (optional). Relative paths in the YAML are relative to
        the YAML file's folder.
    **options
        Passed on to `spatiomol.data.load_dataset` (bundled names: ``missing``,
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
    if isinstance(source, str) and source in list_datasets():
        _check_options(options, load_dataset, f"bundled dataset {source!r}")
        return load_dataset(source, **options)
    path = Path(source)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        raise ValueError(
            f"{source!r} is neither a bundled dataset {list_datasets()} nor an existing "
            "YAML file (.yaml/.yml) naming expression, connectome and regions files"
        )
    spec, files = read_dataset_yaml(path)
    _check_options(options, load_user_brain, f"{path}")
    kwargs = {k: spec[k] for k in ("name", "target_kind", "target_scale", "missing", "gene_order") if k in spec}
    kwargs.update(options)
    brain = load_user_brain(files["expression"], files["connectome"], files["regions"], files.get("subjects"), **kwargs)
    return brain.with_note("spec", {"path": str(path.resolve()), "sha256": file_sha256(path)})
