"""Loading a user's files (named by a dataset YAML or a mapping with its keys) as a `Brain`.

Private helpers of `spatiomol.data.sources.resolve_source`, the one public way in.

Dataset YAML / mapping
----------------------
Keys ``expression``, ``connectome``, ``regions`` (required; in a YAML, paths relative to
the YAML's folder), ``subjects``, ``structural`` (structural connectivity, an input
modality: `spatiomol.data.structural`), ``name``, ``target_kind``, ``target_scale``,
``missing``, ``gene_order`` (optional). File formats: `spatiomol.data.readers`; checks:
`spatiomol.data.validation`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from spatiomol.data.brain import Brain
from spatiomol.data.genome import order_genes
from spatiomol.data.impute import fill_missing
from spatiomol.data.validation import read_and_check

YAML_KEYS = (
    "expression",
    "connectome",
    "regions",
    "subjects",
    "structural",
    "name",
    "target_kind",
    "target_scale",
    "missing",
    "gene_order",
)


#: the keys of a dataset mapping that name files
FILE_KEYS = ("expression", "connectome", "regions", "subjects", "structural")


def _set_diagonal(Y: np.ndarray, target_scale: str) -> np.ndarray:
    Y = (Y + np.swapaxes(Y, -1, -2)) / 2.0
    idx = np.arange(Y.shape[-1])
    if target_scale == "r":
        Y[..., idx, idx] = 1.0
    else:
        diag = Y[..., idx, idx]
        Y[..., idx, idx] = np.where(np.isfinite(diag), diag, 0.0)
    return Y


def _structural_input(S: np.ndarray) -> np.ndarray:
    """Symmetrised structural connectivity with a zero diagonal (self-connections carry no wiring)."""
    S = (S + S.T) / 2.0
    np.fill_diagonal(S, 0.0)
    return S


def load_user_files(
    expression: str | PathLike,
    connectome: str | PathLike,
    regions: str | PathLike,
    subjects: str | PathLike | None = None,
    structural: str | PathLike | None = None,
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
    structural : path-like, optional
        Structural connectivity CSV (an input modality), checked like the connectome
        (labels, finite, symmetric; any scale); symmetrised, diagonal set to 0.
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
        expression,
        connectome,
        regions,
        subjects,
        target_kind=target_kind,
        target_scale=target_scale,
        structural=structural,
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
        structural=None if checked.structural is None else _structural_input(checked.structural),
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
    described : dict
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
        described = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    return described, named_files(described, str(path), path.parent)


def named_files(described: Any, origin: str, folder: Path) -> dict[str, Path]:
    """The files a dataset mapping names (see `read_dataset_yaml`), checked.

    ``origin`` names the mapping in errors (the YAML's path); relative paths are taken
    from ``folder``.
    """
    if not isinstance(described, dict):
        raise ValueError(f"{origin}: expected a mapping with keys {list(YAML_KEYS)}")
    unknown = sorted(set(described) - set(YAML_KEYS))
    if unknown:
        raise ValueError(f"{origin}: unknown key(s) {unknown}; expected keys {list(YAML_KEYS)}")
    absent = [k for k in ("expression", "connectome", "regions") if not described.get(k)]
    if absent:
        raise ValueError(f"{origin}: missing required key(s) {absent} (paths to the user's files)")
    return {k: (folder / str(described[k])) for k in FILE_KEYS if described.get(k)}


def load_named_files(described: dict[str, Any], files: dict[str, Path], **options: Any) -> Brain:
    """`load_user_files` on the files of a dataset mapping; its optional keys, overridden by ``options``."""
    kwargs = {
        k: described[k] for k in ("name", "target_kind", "target_scale", "missing", "gene_order") if k in described
    }
    kwargs.update(options)
    return load_user_files(
        files["expression"],
        files["connectome"],
        files["regions"],
        files.get("subjects"),
        files.get("structural"),
        **kwargs,
    )
