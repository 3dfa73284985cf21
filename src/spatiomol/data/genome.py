"""Gene order: the sequence in which genes enter sequence models (SMT tokens).

Methods
-------
``"tss"``
    Genomic order on GRCh38 (GENCODE v27, bundled file ``genome/hg38_gencode_v27.txt``):
    by chromosome (1–22, X, Y, M; any other contig after M, by name) then by start
    position (bp; the lowest coordinate of the gene, used as its transcription start
    as in the paper's Appendix A.2), ties broken by symbol. Genes absent from the table
    are never dropped: they go last, in their given order, and are counted and listed in
    ``provenance["gene_order"]``.
``"random"``
    A uniformly random permutation from ``numpy.random.default_rng(seed)``.
``"mean_expression"``
    By mean expression over regions (NaN rows ignored), highest first, ties in given order.
``"as_given"``
    Unchanged (the column order of the expression file).
"""

from __future__ import annotations

from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain
from spatiomol.data.bundled_files import fetch_file, genome_key, registry
from spatiomol.hashing import file_sha256

#: gene-order methods of `order_genes` (and of the SMT models' ``gene_order``)
GENE_ORDERS = ("as_given", "tss", "random", "mean_expression")
_CHROMOSOME_ORDER = [str(k) for k in range(1, 23)] + ["X", "Y", "M"]


def chromosome_rank(chrom: str) -> tuple[int, str]:
    """Sort key of a chromosome name (``chr1`` … ``chr22``, ``chrX``, ``chrY``, ``chrM``).

    The ``chr`` prefix is optional and ``MT`` means ``M``. Other contigs sort after ``M``
    by name.
    """
    name = chrom[3:] if chrom.lower().startswith("chr") else chrom
    name = "M" if name.upper() == "MT" else name
    if name.upper() in ("X", "Y", "M"):
        name = name.upper()
    if name in _CHROMOSOME_ORDER:
        return _CHROMOSOME_ORDER.index(name), ""
    return len(_CHROMOSOME_ORDER), name


def read_gene_positions(path: str | PathLike) -> pd.DataFrame:
    """Read a gene-position table ``symbol<TAB>chrom<TAB>start<TAB>end`` (no header).

    Parameters
    ----------
    path : path-like
        Tab-separated text, one gene a line; extra trailing fields are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, chrom, start, end`` (bp, int64), one row per symbol; a symbol
        listed twice keeps its first position in genome order.

    Raises
    ------
    ValueError
        Naming the file and line when a line has fewer than 4 fields or non-integer
        positions.
    """
    path = Path(path)
    rows = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            fields = [f.strip() for f in line.rstrip("\n").split("\t")]
            if not any(fields):
                continue
            if len(fields) < 4 or not fields[0]:
                raise ValueError(f"{path}: line {number}: expected 'symbol<TAB>chrom<TAB>start<TAB>end', got {line!r}")
            try:
                start, end = int(fields[2]), int(fields[3])
            except ValueError:
                raise ValueError(f"{path}: line {number}: start/end must be integers (bp), got {fields[2:4]}") from None
            rows.append((fields[0], fields[1], start, end))
    if not rows:
        raise ValueError(f"{path}: no genes found; expected lines 'symbol<TAB>chrom<TAB>start<TAB>end'")
    table = pd.DataFrame(rows, columns=["symbol", "chrom", "start", "end"])
    ranks = table["chrom"].map(chromosome_rank)
    table["_rank"] = ranks.map(lambda r: r[0])
    table["_contig"] = ranks.map(lambda r: r[1])
    table = table.sort_values(["_rank", "_contig", "start", "symbol"], kind="stable")
    table = table.drop_duplicates("symbol", keep="first").drop(columns=["_rank", "_contig"])
    return table.reset_index(drop=True)


@lru_cache(maxsize=4)
def _cached_positions(path: str, size: int, mtime_ns: int) -> pd.DataFrame:
    # models re-order genes at every fit: parse the 60k-line table once per file version
    return read_gene_positions(path)


def tss_order(genes: list[str] | tuple[str, ...], table: pd.DataFrame) -> tuple[list[int], list[str]]:
    """Positions of ``genes`` in genomic order, unknown genes last.

    Parameters
    ----------
    genes : sequence of str
        Gene symbols.
    table : DataFrame
        As returned by `read_gene_positions`.

    Returns
    -------
    order : list of int
        Indices into ``genes``: known genes sorted by (chromosome, start, symbol), then
        the unknown ones in their given order.
    not_found : list of str
        Symbols absent from the table, in given order.
    """
    table = table[table["symbol"].isin(set(genes))]
    position = {s: (chromosome_rank(c), p) for s, c, p in zip(table["symbol"], table["chrom"], table["start"])}
    known = [k for k, g in enumerate(genes) if g in position]
    unknown = [k for k, g in enumerate(genes) if g not in position]
    known.sort(key=lambda k: (position[genes[k]][0], position[genes[k]][1], genes[k]))
    return known + unknown, [genes[k] for k in unknown]


def order_genes(
    brain: Brain,
    method: str,
    seed: int = 0,
    *,
    table: str | PathLike | None = None,
    mirror: str | PathLike | None = None,
) -> Brain:
    """Reorder the expression columns of a brain.

    Parameters
    ----------
    brain : Brain
    method : {"tss", "random", "mean_expression", "as_given"}
        See the module docstring.
    seed : int
        Seed of ``numpy.random.default_rng`` for ``"random"``.
    table : path-like, optional
        Gene-position table for ``"tss"``; default the bundled GENCODE v27 file,
        fetched (or taken from ``mirror``) and hash-checked.
    mirror : path-like, optional
        Mirror folder for the bundled table (default ``$SPATIOMOL_DATA_MIRROR``).

    Returns
    -------
    Brain
        Same data, columns of ``X`` and ``genes`` reordered. ``provenance["gene_order"]``
        holds ``method``, ``n_genes`` and, for ``"tss"``, ``n_found``, ``n_not_found``,
        ``not_found`` (symbols, placed last), ``chromosomes`` (one per gene in the new
        order, ``None`` when not found) and the table's path and SHA-256.
    """
    genes = list(brain.genes)
    report: dict[str, Any] = {"method": method, "n_genes": len(genes)}
    if method == "as_given":
        order = list(range(len(genes)))
    elif method == "random":
        order = [int(k) for k in np.random.default_rng(seed).permutation(len(genes))]
        report["seed"] = int(seed)
    elif method == "mean_expression":
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(brain.X, axis=0) if brain.n_regions else np.zeros(len(genes))
        order = [int(k) for k in np.argsort(-mean, kind="stable")]
        report["sort"] = "mean expression over regions, descending"
    elif method == "tss":
        if table is None:
            key = genome_key()
            path = fetch_file(key, mirror=mirror)
            report["table"] = {"key": key, "path": str(path), "sha256": registry()["files"][key]["sha256"]}
        else:
            path = Path(table)
            report["table"] = {"path": str(path), "sha256": file_sha256(path)}
        stat = Path(path).stat()
        positions = _cached_positions(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        order, not_found = tss_order(genes, positions)
        found = positions[positions["symbol"].isin(set(genes))]
        chrom = dict(zip(found["symbol"], found["chrom"]))
        report.update(
            {
                "n_found": len(genes) - len(not_found),
                "n_not_found": len(not_found),
                "not_found": not_found,
                "placement_of_not_found": "last, in given order",
                "chromosomes": [chrom.get(genes[k]) for k in order],
            }
        )
    else:
        raise ValueError(f"gene_order must be one of {GENE_ORDERS}, got {method!r}")
    new_genes = [genes[k] for k in order]
    return brain.select_genes(new_genes).with_note("gene_order", report)
