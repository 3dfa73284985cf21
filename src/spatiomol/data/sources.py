"""Dataset sources: the one place a dataset string becomes a `Brain`.

A *source* is one of

- a bundled dataset name (``"hcp-s100"``, see `spatiomol.data.bundled_files.list_datasets`);
- a path to a user dataset YAML (read by `spatiomol.data.loading.load_brain`);
- ``"synthetic:key=value,..."``: keyword arguments of
  `spatiomol.data.synthetic.make_synthetic_brain` (integers, floats or text; ``name``
  defaults to the source string).

`resolve_source` caches brains per process keyed by *content* (`source_digest`), not by
the string: a user who edits a CSV in a notebook, or on a long-lived Dask worker, gets
the new brain on the next call, while an unchanged source is served from the cache.
"""

from __future__ import annotations

import inspect
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from spatiomol.data.brain import Brain
from spatiomol.data.bundled_files import dataset_files, list_datasets, registry
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import GENE_ORDERS, order_genes
from spatiomol.data.loading import load_brain, read_dataset_yaml
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.hashing import file_sha256, json_sha256

SYNTHETIC_PREFIX = "synthetic:"
#: brains kept per process (least recently used dropped first)
_CACHE_SIZE = 32

_BRAINS: OrderedDict[tuple[str, str], Brain] = OrderedDict()
_KEY_VALUE = re.compile(r"^\s*[A-Za-z_]\w*\s*=")
_SYNTHETIC_PARAMS = inspect.signature(make_synthetic_brain).parameters
# load options of a bundled dataset as `resolve_source` uses them: the loader's defaults
# (the mirror only says where the hash-checked files are; gene order is part of the cache key)
_BUNDLED_OPTIONS = {
    p.name: p.default
    for p in inspect.signature(load_dataset).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.name not in ("mirror", "gene_order")
}


def _is_synthetic(source: str) -> bool:
    return source == SYNTHETIC_PREFIX.rstrip(":") or source.startswith(SYNTHETIC_PREFIX)


def _parse_scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _synthetic_kwargs(source: str) -> dict[str, Any]:
    """Keyword arguments of `make_synthetic_brain` named by a ``synthetic:`` source."""
    _, _, arg_text = source.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in arg_text.split(","))):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"dataset {source!r}: expected '{SYNTHETIC_PREFIX}key=value,...', got item {item!r}")
        if name not in _SYNTHETIC_PARAMS:
            raise ValueError(
                f"dataset {source!r}: item {item!r}: unknown argument {name!r}; "
                f"make_synthetic_brain takes {sorted(_SYNTHETIC_PARAMS)}"
            )
        if name in kwargs:
            raise ValueError(f"dataset {source!r}: item {item!r}: argument {name!r} given twice")
        kwargs[name] = _parse_scalar(value.strip())
    kwargs.setdefault("name", source)
    return kwargs


def source_digest(source: str) -> str:
    """Hex SHA-256 of the content that defines the brain a source names.

    Parameters
    ----------
    source : str
        Bundled dataset name, path to a dataset YAML, or ``synthetic:key=value,...``.

    Returns
    -------
    str
        64 hex characters. Bundled dataset: its name, load options and the registry
        SHA-256 of each of its files. YAML: the YAML's bytes and the bytes of every file
        it names (file hashes are memoised on path, size and mtime, so repeated calls
        are cheap and an edited file is re-read). Synthetic: the parsed arguments with
        the defaults filled in.

    Raises
    ------
    ValueError
        Malformed synthetic spec or unknown argument; a source that is neither a bundled
        name nor an existing YAML file; a YAML file that does not parse.
    """
    if _is_synthetic(source):
        bound = inspect.signature(make_synthetic_brain).bind_partial(**_synthetic_kwargs(source))
        bound.apply_defaults()
        return json_sha256({"kind": "synthetic", "arguments": dict(bound.arguments)})
    if source in list_datasets():
        shas = registry()["files"]
        return json_sha256(
            {
                "kind": "bundled",
                "name": source,
                "options": _BUNDLED_OPTIONS,
                "files": {role: shas[key]["sha256"] for role, key in dataset_files(source).items()},
            }
        )
    path = Path(source)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        raise ValueError(
            f"dataset {source!r} is neither a bundled dataset {list_datasets()}, an existing YAML file "
            f"(.yaml/.yml) naming expression, connectome and regions files, nor '{SYNTHETIC_PREFIX}key=value,...'"
        )
    _, named = read_dataset_yaml(path)
    # a named file that is missing hashes as None; loading it then reports the problem
    files = {role: (file_sha256(p) if p.is_file() else None) for role, p in named.items()}
    return json_sha256({"kind": "yaml", "yaml": file_sha256(path), "files": files})


def resolve_source(source: str, *, gene_order: str = "as_given") -> Brain:
    """The `Brain` a source names, cached per process by content.

    Parameters
    ----------
    source : str
        A bundled dataset name (``"hcp-s100"``), a path to a user dataset YAML, or
        ``"synthetic:n_regions=40,n_genes=30,seed=1"`` (keyword arguments of
        `spatiomol.data.synthetic.make_synthetic_brain`; ``name`` defaults to the source).
    gene_order : str
        ``"as_given"`` or another method of `spatiomol.data.genome.GENE_ORDERS`, applied
        with `spatiomol.data.genome.order_genes` (seed 0).

    Returns
    -------
    Brain
        The same object for the same content and gene order within a process; treat it
        as immutable.

    Raises
    ------
    ValueError
        See `source_digest`; unknown ``gene_order``; problems in a user's files.
    """
    if gene_order not in GENE_ORDERS:
        raise ValueError(f"dataset {source!r}: gene_order must be one of {GENE_ORDERS}, got {gene_order!r}")
    key = (source_digest(source), gene_order)
    if key in _BRAINS:
        _BRAINS.move_to_end(key)
        return _BRAINS[key]
    if _is_synthetic(source):
        try:
            brain = make_synthetic_brain(**_synthetic_kwargs(source))
        except (TypeError, ValueError) as err:  # e.g. a value of the wrong type or an unknown rule
            raise ValueError(f"dataset {source!r}: {err}") from err
    else:
        brain = load_brain(source)
    if gene_order != "as_given":
        brain = order_genes(brain, gene_order)
    _BRAINS[key] = brain
    while len(_BRAINS) > _CACHE_SIZE:
        _BRAINS.popitem(last=False)
    return brain


def split_source_list(text: str) -> list[str]:
    """Split a comma-separated list of sources, keeping each ``synthetic:`` spec whole.

    An item of the form ``key=value`` that follows a synthetic source continues it, so
    ``"hcp-s100,synthetic:n_regions=30,n_genes=20,my.yaml"`` gives
    ``["hcp-s100", "synthetic:n_regions=30,n_genes=20", "my.yaml"]``. Blank items are
    dropped and items are stripped.
    """
    out: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if out and _is_synthetic(out[-1]) and _KEY_VALUE.match(item):
            head = out[-1] if out[-1].startswith(SYNTHETIC_PREFIX) else SYNTHETIC_PREFIX
            out[-1] = f"{head}{item}" if head.endswith(":") else f"{head},{item}"
        else:
            out.append(item)
    return out
