"""Dataset sources: the one place a dataset string becomes a `Brain`.

A *source* is one of

- a bundled dataset name (``"hcp-s100"``, see `spatiomol.data.bundled_files.list_datasets`;
  loaded by `spatiomol.data.datasets.load_dataset`);
- a path to a user dataset YAML naming the user's files (`spatiomol.data.loading`);
- a mapping with the YAML's keys (``{"expression": ..., "connectome": ..., "regions": ...}``;
  relative paths from the working directory), e.g. files given on the command line;
- ``"synthetic:key=value,..."``: keyword arguments of
  `spatiomol.data.synthetic.make_synthetic_brain` (integers, floats or text; ``name``
  defaults to the source string).

`resolve_source` is the only way the CLI, the runner, reports and explain turn a source
into a `Brain`; loader options (``missing``, ``target_scale``, ...) are its keyword
arguments and part of the cache key.

`resolve_source` caches brains per process keyed by *content* (`source_digest`), not by
the string: a user who edits a CSV in a notebook, or on a long-lived Dask worker, gets
the new brain on the next call, while an unchanged source is served from the cache.
"""

from __future__ import annotations

import inspect
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spatiomol.data.brain import Brain
from spatiomol.data.bundled_files import dataset_files, list_datasets, registry
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import GENE_ORDERS, order_genes
from spatiomol.data.loading import load_named_files, load_user_files, named_files, read_dataset_yaml
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.hashing import file_sha256, json_sha256

SYNTHETIC_PREFIX = "synthetic:"
#: brains kept per process (least recently used dropped first)
_CACHE_SIZE = 32

#: what a source may be (see the module docstring)
Source = str | os.PathLike | Mapping[str, Any]

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


def _is_synthetic(source: Source) -> bool:
    return isinstance(source, str) and (source == SYNTHETIC_PREFIX.rstrip(":") or source.startswith(SYNTHETIC_PREFIX))


def _kind(source: Source) -> str:
    """``"synthetic"``, ``"bundled"``, ``"mapping"`` or ``"yaml"``; ValueError for anything else."""
    if isinstance(source, Mapping):
        return "mapping"
    if _is_synthetic(source):
        return "synthetic"
    if isinstance(source, str) and source in list_datasets():
        return "bundled"
    path = Path(source)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        raise ValueError(
            f"dataset {str(source)!r} is neither a bundled dataset {list_datasets()}, an existing YAML file "
            f"(.yaml/.yml) naming expression, connectome and regions files, nor '{SYNTHETIC_PREFIX}key=value,...'"
        )
    return "yaml"


def _check_options(source: Source, kind: str, options: Mapping[str, Any]) -> None:
    """ValueError naming any loader option the source's loader does not take, and the accepted ones."""
    if kind == "synthetic":
        accepted: list[str] = []
    else:
        loader = load_dataset if kind == "bundled" else load_user_files
        accepted = [p.name for p in inspect.signature(loader).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"dataset {_label(source)!r} ({kind}): unknown option(s) {unknown}; accepted options: {accepted}"
        )


def _label(source: Source) -> str:
    return str(dict(source)) if isinstance(source, Mapping) else str(source)


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


def source_digest(source: Source, **options: Any) -> str:
    """Hex SHA-256 of the content that defines the brain a source names.

    Parameters
    ----------
    source : str, path-like or mapping
        Bundled dataset name, path to a dataset YAML, a mapping with the YAML's keys, or
        ``synthetic:key=value,...``.
    **options
        Loader options (see `resolve_source`); ``mirror`` is left out (it only says where
        the hash-checked files are).

    Returns
    -------
    str
        64 hex characters. Bundled dataset: its name, load options and the registry
        SHA-256 of each of its files. YAML or mapping: the YAML's bytes (or the mapping)
        and the bytes of every file it names (file hashes are memoised on path, size and
        mtime, so repeated calls are cheap and an edited file is re-read). Synthetic: the
        parsed arguments with the defaults filled in.

    Raises
    ------
    ValueError
        Malformed synthetic spec or unknown argument; a source that is neither a bundled
        name, a mapping nor an existing YAML file; a YAML file that does not parse; an
        option the source's loader does not take.
    """
    kind = _kind(source)
    _check_options(source, kind, options)
    chosen = {k: v for k, v in options.items() if k != "mirror"}
    if kind == "synthetic":
        bound = inspect.signature(make_synthetic_brain).bind_partial(**_synthetic_kwargs(source))
        bound.apply_defaults()
        return json_sha256({"kind": "synthetic", "arguments": dict(bound.arguments)})
    if kind == "bundled":
        shas = registry()["files"]
        return json_sha256(
            {
                "kind": "bundled",
                "name": source,
                "options": {**_BUNDLED_OPTIONS, **chosen},
                "files": {role: shas[key]["sha256"] for role, key in dataset_files(source).items()},
            }
        )
    if kind == "yaml":
        _, named = read_dataset_yaml(source)
        defined: Any = {"yaml": file_sha256(source)}
    else:
        named = named_files(dict(source), "dataset mapping", Path.cwd())
        defined = {"mapping": {k: str(v) for k, v in source.items()}}
    # a named file that is missing hashes as None; loading it then reports the problem
    files = {role: (file_sha256(p) if p.is_file() else None) for role, p in named.items()}
    return json_sha256({"kind": kind, **defined, "files": files, "options": chosen})


def resolve_source(source: Source, *, gene_order: str = "as_given", **options: Any) -> Brain:
    """The `Brain` a source names, cached per process by content: the one way in.

    Parameters
    ----------
    source : str, path-like or mapping
        A bundled dataset name (``"hcp-s100"``), a path to a user dataset YAML, a mapping
        with the YAML's keys (``expression``, ``connectome``, ``regions`` required;
        ``subjects``, ``name``, ``target_kind``, ``target_scale``, ``missing``,
        ``gene_order``), or ``"synthetic:n_regions=40,n_genes=30,seed=1"`` (keyword
        arguments of `spatiomol.data.synthetic.make_synthetic_brain`; ``name`` defaults to
        the source).
    gene_order : str
        ``"as_given"`` or another method of `spatiomol.data.genome.GENE_ORDERS`, applied
        with `spatiomol.data.genome.order_genes` (seed 0) after loading.
    **options
        Loader options: for a bundled name those of `spatiomol.data.datasets.load_dataset`
        (``missing``, ``seed``, ``mirror``, ``fc_scale``, ``n_neighbors``); for a YAML or
        mapping those of `spatiomol.data.loading.load_user_files` (``name``,
        ``target_kind``, ``target_scale``, ``missing``, ``seed``, ``mirror``), overriding
        the file's values; none for a synthetic spec.

    Returns
    -------
    Brain
        The same object for the same content, options and gene order within a process;
        treat it as immutable.

    Raises
    ------
    ValueError
        See `source_digest`; unknown ``gene_order``; problems in a user's files.
    """
    if gene_order not in GENE_ORDERS:
        raise ValueError(f"dataset {_label(source)!r}: gene_order must be one of {GENE_ORDERS}, got {gene_order!r}")
    key = (source_digest(source, **options), gene_order)
    if key in _BRAINS:
        _BRAINS.move_to_end(key)
        return _BRAINS[key]
    brain = _load(source, options)
    if gene_order != "as_given":
        brain = order_genes(brain, gene_order)
    _BRAINS[key] = brain
    while len(_BRAINS) > _CACHE_SIZE:
        _BRAINS.popitem(last=False)
    return brain


def _load(source: Source, options: Mapping[str, Any]) -> Brain:
    kind = _kind(source)
    if kind == "synthetic":
        try:
            return make_synthetic_brain(**_synthetic_kwargs(source))
        except (TypeError, ValueError) as err:  # e.g. a value of the wrong type or an unknown rule
            raise ValueError(f"dataset {source!r}: {err}") from err
    if kind == "bundled":
        return load_dataset(source, **options)
    if kind == "yaml":
        described, files = read_dataset_yaml(source)
        brain = load_named_files(described, files, **options)
        return brain.with_note("spec", {"path": str(Path(source).resolve()), "sha256": file_sha256(source)})
    described = dict(source)
    return load_named_files(described, named_files(described, "dataset mapping", Path.cwd()), **options)


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
