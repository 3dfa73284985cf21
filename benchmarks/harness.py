"""The benchmark suite's shared harness: machine/load header, resumable CSVs, table cells,
summary writing and the command-line conventions every script follows.

Layout (see ``benchmarks/README.md``): ``perf/`` holds the speed benchmarks (timed against a
reference library or the old code path; ``make bench`` runs them all through ``run_all.py``),
``studies/`` the long, resumable scientific studies (run on their own; ``run_all.py
--refresh-long-running`` copies their tables into ``results.md``). Files whose name starts
with ``_`` are helpers, not scripts.

Every script starts by putting ``benchmarks/`` on ``sys.path`` (so ``import harness``,
``from studies.smt_ablation import ...`` work from any working directory) and takes

- ``--quick``: a smoke run at tiny sizes, written to a fresh temporary folder unless
  ``--out`` says where (never into ``benchmarks/results/``, whose tables are committed);
- ``--out DIR``: the folder of its tables (and a study's CSVs), default ``benchmarks/results/``;
- studies also ``--summary-only``: rewrite the table from the stored rows, measure nothing.

This module imports only the standard library when it is loaded (numpy and spatiomol when a
function needs them), so a script may still set BLAS thread variables after parsing its
arguments.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: the committed tables (docs link to them): only full runs write here
RESULTS = HERE / "results"
PERF = HERE / "perf"
STUDIES = HERE / "studies"
#: the brain of the studies' ``--quick`` runs: tiny and synthetic, so a smoke run takes seconds
QUICK_BRAIN = "synthetic:n_regions=40,n_genes=24,seed=0"


# ------------------------------------------------------------------ machine and load
def cpu() -> str:
    """The processor's name where the platform gives one, else the architecture."""
    return platform.processor() or platform.machine()


def load_average(values: Sequence[float] | None = None) -> str:
    """``"1.2, 1.0, 0.9"``: the 1, 5 and 15 minute load averages (now, or ``values``)."""
    return ", ".join(f"{x:.1f}" for x in (os.getloadavg() if values is None else values))


def machine_header(load_start: Sequence[float] | None = None, packages: Iterable[str] = (), load: bool = True) -> str:
    """One sentence for a table's header: the machine, that other jobs share it, and its load.

    ``load_start``: ``os.getloadavg()`` taken when the measurement began (the sentence then
    gives the load at the start and at the end); ``packages``: distributions whose versions
    matter to the timings; ``load=False`` (the resumable studies, whose tables are rewritten
    over hours): no load average.
    """
    versions = [f"{name} {metadata.version(name)}" for name in packages]
    what = ", ".join([cpu(), f"{os.cpu_count()} cores", f"Python {platform.python_version()}", *versions])
    if not load:
        return f"Machine: {what}, shared with other jobs."
    during = f"at the start {load_average(load_start)}, at the end " if load_start is not None else "at the end "
    return (
        f"Machine: {what}, shared with other jobs (load average over 1, 5 and 15 min {during}"
        f"{load_average()}): absolute timings are noisy, ratios within a table more telling."
    )


# ----------------------------------------------------------------- resumable CSV files
def read_rows(path: Path) -> list[dict[str, str]]:
    """Every row of the CSV file ``path`` (none when it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(path: Path, record: Mapping[str, Any], fields: Sequence[str]) -> None:
    """Rewrite ``path`` with one more row, atomically (a killed run loses at most this fit)."""
    append_rows(path, [record], fields)


def append_rows(
    path: Path,
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[str],
    replace: Callable[[dict[str, str]], bool] | None = None,
    lineterminator: str = "\n",
) -> None:
    """Rewrite ``path`` with ``records`` added, all or none (atomically).

    Holds an exclusive lock on ``<path>.lock`` from the read to the rename, so several
    processes (e.g. one per model) can append to one file without losing each other's rows.
    ``replace``: stored rows for which it is true are dropped first (a re-measured row
    replaces the old one). ``lineterminator``: ``"\\r\\n"`` for files first written with
    `csv`'s default.
    """
    from spatiomol.atomic import atomic_path

    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [row for row in read_rows(path) if replace is None or not replace(row)]
        rows += [{k: record[k] for k in fields} for record in records]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator=lineterminator)
        writer.writeheader()
        writer.writerows(rows)
        with atomic_path(path) as tmp:
            tmp.write_text(buffer.getvalue())


# ----------------------------------------------------------------------- tables
def fmt(values: Sequence[float]) -> str:
    """``mean ± SD (n)`` of test r values (sample SD; "—" for none)."""
    import numpy as np

    if not len(values):
        return "—"
    sd = np.std(values, ddof=1) if len(values) > 1 else float("nan")
    return f"{np.mean(values):.3f} ± {sd:.3f} ({len(values)})"


def load_brain(dataset: str) -> Any:
    """A bundled dataset by name, ``<name>-cortex`` (its cortical regions only), or a synthetic
    spec such as `QUICK_BRAIN` (``synthetic:n_regions=40,n_genes=24,seed=0``)."""
    import numpy as np

    from spatiomol.data import resolve_source
    from spatiomol.data.datasets import load_dataset

    if dataset.startswith("synthetic:"):
        return resolve_source(dataset)
    if dataset.endswith("-cortex"):
        brain = load_dataset(dataset.removesuffix("-cortex"))
        return brain.subset_regions(np.flatnonzero(brain.structure == "cortex")).replace(name=dataset)
    return load_dataset(dataset)


def table_stem(study: str, dataset: str) -> str:
    """A study's file stem: ``<study>`` on hcp-s100 (and the quick brain), else ``<study>_<dataset>``."""
    return study if dataset in ("hcp-s100", QUICK_BRAIN) else f"{study}_{dataset}"


def write_summary(path: Path, text: str, echo: bool = True) -> Path:
    """Write a table atomically (parents created), printing it unless ``echo`` is false."""
    from spatiomol.atomic import atomic_path

    text = text if text.endswith("\n") else text + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    if echo:
        print(text, end="", flush=True)
    return path


def run_study(table: Path, summary: Callable[[], str], measure: Callable[[Callable[[], None]], None] | None) -> int:
    """The ending every resumable study shares.

    Unless ``measure`` is None (``--summary-only``), run it; it calls the checkpoint it is
    given after each finished unit (a split, a model) to rewrite ``table`` from all rows so
    far, so a killed run leaves a current table. Then ``table`` is rewritten once more and
    printed. ``summary()`` builds the table's text from the stored rows.
    """

    def checkpoint() -> None:
        write_summary(table, summary(), echo=False)

    if measure is not None:
        measure(checkpoint)
    write_summary(table, summary())
    return 0


# ------------------------------------------------------------- command-line conventions
def make_parser(doc: str | None, study: bool = False) -> argparse.ArgumentParser:
    """A parser with the suite's standard flags: ``--quick`` and ``--out`` (and, for a
    ``study``, ``--summary-only``). ``doc``: the script's docstring (its first line is the
    description)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0] if doc else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run at tiny sizes, written to a new temporary folder unless --out is given "
        "(never into benchmarks/results/)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of the tables" + (" and CSVs" if study else "") + " (default: benchmarks/results/)",
    )
    if study:
        parser.add_argument("--summary-only", action="store_true", help="rewrite the table from stored rows and exit")
    return parser


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, quick: Mapping[str, Any] | None = None
) -> argparse.Namespace:
    """Parse ``argv``; under ``--quick`` every option left at its default takes its value from
    ``quick`` (options given on the command line win). ``args.out`` becomes the output folder
    (`output_dir`)."""
    args = parser.parse_args(argv)
    if args.quick and quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    args.out = output_dir(parser, args)
    return args


def output_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """``--out``; else a fresh temporary folder under ``--quick``, else `RESULTS`. A quick run
    may not write into `RESULTS` (the committed tables)."""
    if args.out is not None:
        out = Path(args.out).resolve()
        if args.quick and (out == RESULTS or RESULTS in out.parents):
            parser.error("--quick never writes into benchmarks/results/ (the committed tables); pick another --out")
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="spatiomol-bench-"))
        print(f"--quick: writing to {out}", flush=True)
    else:
        out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    return out


def script_paths(folder: Path) -> list[Path]:
    """The scripts of ``folder`` in name order (helpers, named ``_*.py``, left out)."""
    return sorted(path for path in folder.glob("*.py") if not path.name.startswith("_"))
