"""`spatiomol report RESULTS`: ``report.md`` + ``report.html``, CSV tables and PNG figures of a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import tables
from spatiomol.reports.context import ReportContext
from spatiomol.reports.document import render_html, render_markdown
from spatiomol.reports.null_families import families_in, family_rows, manifest_families
from spatiomol.reports.sections import report_blocks

#: file name of the self-contained HTML report, next to ``report.md``
HTML_NAME = "report.html"

#: columns that identify one cell of the report (one value per metric and stratum); null
#: runs of several families side by side are different cells
CELL_COLUMNS = ["dataset", "model", "split_type", "input", "null_family", "null_index", "repeat", "fold"]


def html_path(report_md: str | Path) -> Path:
    """The ``report.html`` written next to a ``report.md`` (by `write_report` with ``html=True``)."""
    return Path(report_md).with_name(HTML_NAME)


def current_ids(manifest: dict[str, Any]) -> set[str] | None:
    """Run ids of the folder's latest settings: the grid's ``run_ids`` and transfer's ids.

    ``None`` when the manifest records none (a folder from before the manifest listed them).
    """
    grid = manifest.get("run_ids")
    transfer = manifest.get("transfer_run_ids")
    if grid is None and transfer is None:
        return None
    ids = set(grid or [])
    for values in (transfer or {}).values():
        ids.update(values)
    return ids


def current_runs(df: pd.DataFrame, manifest: dict[str, Any], source: str = "manifest.json") -> pd.DataFrame:
    """The rows of the runs the manifest lists as current; one run per report cell.

    A results folder keeps the parts of every configuration ever run into it (runs are
    append-only); the report must not average a cell over old and new settings. Rows
    whose ``run_id`` is not in the manifest's ``run_ids`` (written by every
    `spatiomol.experiments.runner.run_experiment`) or ``transfer_run_ids`` are dropped.

    Null runs of the several families of one configuration (``null_family``,
    `spatiomol.experiments.config.null_family_label`), and the nulls of one family scored on
    one split (``null_index``, shared folds), are different cells.

    Raises
    ------
    ValueError
        When a (dataset, model, split_type, input, null_family, null_index, repeat, fold) cell still
        has more than one run (two settings at once), naming the cell and its run ids; or,
        for a manifest without ``run_ids``, when null runs belong to a family the
        manifest's configuration does not name (`null_families.manifest_families`).
    """
    ids = current_ids(manifest)
    if ids is not None:
        df = df[df["run_id"].isin(ids)].reset_index(drop=True)
    else:
        named = manifest_families(manifest)
        found = families_in(df)
        other = [f for f in found if f not in named]
        if named and other:
            raise ValueError(
                f"{source}: null runs of families {other} that the configuration does not name "
                f"(its null families: {list(named)}); the folder mixes settings and its manifest has no "
                "field 'run_ids' to tell the current runs — report a results folder written by one "
                "configuration (use a new folder per configuration)"
            )
    runs = df[[*CELL_COLUMNS, "run_id"]].drop_duplicates()
    counts = runs.groupby(CELL_COLUMNS, sort=False)["run_id"].nunique()
    mixed = counts[counts > 1]
    if not mixed.empty:
        cell = {k: v.item() if isinstance(v, np.generic) else v for k, v in zip(CELL_COLUMNS, mixed.index[0])}
        rids = sorted(runs.merge(pd.DataFrame([cell]), on=CELL_COLUMNS)["run_id"])
        raise ValueError(
            f"{source}: {len(mixed)} report cell(s) hold runs of different settings, e.g. {cell} has runs "
            f"{rids}; expected one run per (dataset, model, split_type, input, null_family, null_index, repeat, "
            "fold) — report a results folder written by one configuration (use a new folder per configuration)"
        )
    return df


def load_current(store: ResultsStore) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The folder's current rows (`current_runs`) and its manifest.

    Raises
    ------
    ValueError
        When the folder has no finished runs, or none of the runs its manifest lists as
        current (and as `current_runs` raises).
    """
    df = store.load()
    if df.empty:
        raise ValueError(f"{store.root}: no finished runs in {store.parts_dir} (run `spatiomol run` first)")
    manifest = store.read_manifest()
    df = current_runs(df, manifest, str(store.manifest_path))
    if df.empty:
        raise ValueError(
            f"{store.manifest_path}: none of the runs listed in field 'run_ids' has finished "
            f"(no part in {store.parts_dir}); run `spatiomol run` first"
        )
    return df, manifest


def write_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    n_permutations: int = 10000,
    seed: int = 0,
    *,
    html: bool = True,
    brain_views: bool = True,
    interactive: bool = True,
) -> Path:
    """Write ``report.md``, ``report.html``, ``tables/*.csv`` and ``figures/*.png`` for a results folder.

    The report is the sections of `spatiomol.reports.sections` in order
    (`spatiomol.reports.sections.report_blocks`): header, transfer, then per dataset
    provenance, nulls diagnostic, Tables 1–3, paired statistics, true vs each null family
    (with its consensus lines and figure) and figures, and the failed runs. With several
    null families side by side (manifest ``null_families``), Tables 1–3, the true-vs-null
    statistics and the figures of one split show the first family of the configuration
    that has runs; the null-families section compares them all. Both pages are rendered
    from the same blocks (`spatiomol.reports.document`); ``report.html`` inlines every
    figure and adds the interactive brain views.

    Parameters
    ----------
    results_dir : path of a `ResultsStore`.
    out_dir : where to write (default: ``results_dir``).
    n_permutations, seed : sign-flip test settings (`spatiomol.reports.stats`).
    html : also write the self-contained ``report.html``.
    brain_views : draw the nilearn glass-brain figures (connectomes of one split, per-region
        accuracy); about 5 s per dataset and split type.
    interactive : add nilearn ``view_connectome`` panels to ``report.html`` (~2.5 MB each;
        one split type per dataset).

    Returns
    -------
    Path of ``report.md`` (``report.html`` lies next to it, `html_path`).
    """
    store = ResultsStore(results_dir)
    out = Path(out_dir) if out_dir is not None else store.root
    df, manifest = load_current(store)
    tdir, fdir = out / "tables", out / "figures"
    tdir.mkdir(parents=True, exist_ok=True)
    fdir.mkdir(parents=True, exist_ok=True)
    tables.split_summary(df).to_csv(tdir / "summary.csv", index=False)  # every family, keyed by null_family
    df.to_csv(tdir / "results.csv", index=False)
    is_transfer = df["split_type"] == "transfer"
    grid = df[~is_transfer].reset_index(drop=True)
    settings = manifest_families(manifest)
    families = families_in(grid, list(settings))
    # Tables 1–3 and the one-null statistics show the configuration's first family (with runs)
    shown = family_rows(grid, families[0]) if families else grid
    ctx = ReportContext(
        store=store,
        out=out,
        tables_dir=tdir,
        figures_dir=fdir,
        df=shown,
        summary=tables.split_summary(shown),
        manifest=manifest,
        # the latest grid's configuration ("config" keeps the folder's first one)
        config=manifest.get("grid_config") or manifest.get("config", {}),
        n_permutations=n_permutations,
        seed=seed,
        brain_views=brain_views,
        interactive=html and brain_views and interactive,
        all_rows=grid,
        families=families,
        family_settings=settings,
    )
    blocks = report_blocks(ctx, df["run_id"].nunique(), df[is_transfer], current_ids(manifest))
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text(render_markdown(blocks, out))
    if html:
        title = ctx.config.get("name", store.root.name)
        with atomic_path(out / HTML_NAME) as tmp:
            tmp.write_text(render_html(blocks, f"spatiomol results: {title}"), encoding="utf-8")
    return path
