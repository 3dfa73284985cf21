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
"""

from __future__ import annotations

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
    roles = ("expression", "connectome", "labels", "atlas", "subcortex_atlas")
    return {role: entry[role] for role in roles}


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
    if folder is not None:
        path = folder / key
        if not path.is_file():
            raise ValueError(f"data mirror {folder}: file {key} is missing; expected it with SHA-256 {expected}")
        actual = file_sha256(path)
        if actual != expected:
            raise ValueError(
                f"data mirror file {path}: SHA-256 {actual} does not match the registry's "
                f"{expected}; the file is corrupted or a different version"
            )
        return path
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
    dict role → path, roles ``expression, connectome, labels, atlas, subcortex_atlas``.
    """
    return {role: fetch_file(key, mirror=mirror, downloader=downloader) for role, key in dataset_files(name).items()}
