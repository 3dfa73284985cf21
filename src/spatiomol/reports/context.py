"""What every report section reads: the `ReportContext`, and the small look-ups sections share.

`ReportContext` holds the store, the current rows and the report folder; the helpers
name files (`slug`), pick models (`best_model`), say which null family the tables show
(`shown_family_note`, `family_settings`), and find what the results folder stores for a
dataset (`dataset_regions`, `nulls_files`, and `resolve_brain` when it stores too little).
The section modules (`overview_sections`, `table_sections`, `null_sections`,
`figure_sections`, `brain_view_sections`) import from here; nothing here imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spatiomol.evaluation.splits import SPLIT_KINDS
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import null_families

#: split types in the order the report shows them: every protocol, in `SPLIT_KINDS` order
SPLIT_ORDER = SPLIT_KINDS


@dataclass
class ReportContext:
    """What every section reads: the store, the current rows and where to write.

    Attributes
    ----------
    store : ResultsStore
    out, tables_dir, figures_dir : Path
        Report folder and its ``tables/`` and ``figures/``.
    df : DataFrame
        Current rows (`spatiomol.reports.report.current_runs`) of the grid (no transfer),
        with the null rows of the shown family only (`family`): what Tables 1–3, the
        true-vs-null statistics and the figures read.
    summary : DataFrame
        `spatiomol.reports.tables.split_summary` of ``df``.
    manifest, config : dict
        The folder's manifest and its latest grid configuration.
    n_permutations, seed : int
        Sign-flip test settings (`spatiomol.reports.stats`).
    brain_views : bool
        Whether to draw the nilearn glass-brain figures
        (`spatiomol.reports.brain_view_sections.brain_views`).
    interactive : bool
        Whether to build the interactive brain views (HTML report only).
    all_rows : DataFrame or None
        Current grid rows of every null family (None: ``df``).
    families : list of str
        Labels of the null families with runs, the configuration's order first
        (`null_families.families_in`); ``families[0]`` is the one ``df`` shows.
    family_settings : dict
        Label → settings of the configuration's null families
        (`null_families.manifest_families`).
    region_tables : dict
        Dataset → its region table (`dataset_regions`), filled as sections ask.
    """

    store: ResultsStore
    out: Path
    tables_dir: Path
    figures_dir: Path
    df: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict[str, Any]
    config: dict[str, Any]
    n_permutations: int = 10000
    seed: int = 0
    brain_views: bool = True
    interactive: bool = True
    all_rows: pd.DataFrame | None = None
    families: list[str] = field(default_factory=list)
    family_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    region_tables: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> pd.DataFrame:
        """Current grid rows of every null family."""
        return self.df if self.all_rows is None else self.all_rows

    @property
    def family(self) -> str | None:
        """The null family shown in Tables 1–3 (None: no null runs)."""
        return self.families[0] if self.families else None


def shown_family_note(ctx: ReportContext) -> str:
    """`` (null family `cge`)``: the family Tables 1–3 show; ``""`` without null runs."""
    return "" if ctx.family is None else f" (null family `{ctx.family}`)"


def family_settings(ctx: ReportContext) -> dict[str, dict[str, Any]]:
    """Label → settings of the folder's null families (the context's, else the manifest's)."""
    return ctx.family_settings or null_families.manifest_families(ctx.manifest)


def slug(text: str) -> str:
    """File-name-safe short name of a dataset source."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(text).name)[:40]


def best_model(summary: pd.DataFrame, dataset: str, split_type: str, candidates=None) -> str | None:
    """Model with the highest mean true-input global test Pearson r (among ``candidates``)."""
    s = summary[
        (summary["dataset"] == dataset)
        & (summary["split_type"] == split_type)
        & (summary["input"] == "true")
        & (summary["metric"] == "pearson")
        & (summary["stratum"] == "all")
    ]
    if candidates is not None:
        s = s[s["model"].isin(candidates)]
    s = s[s["mean"].notna()]  # a constant predictor (a fit that did not train) has no r
    if s.empty:
        return None
    return str(s.loc[s["mean"].idxmax(), "model"])


def split_types(sub: pd.DataFrame) -> list[str]:
    """The split types of ``sub``'s rows, in report order (`SPLIT_ORDER`)."""
    return [k for k in SPLIT_ORDER if k in set(sub["split_type"])]


def resolve_brain(ctx: ReportContext, dataset: str):
    """The dataset's `Brain` as it is now (`resolve_source`): what the CGE figures need (expression)."""
    from spatiomol.data.sources import resolve_source

    return resolve_source(dataset, gene_order=ctx.config.get("gene_order", "as_given"))


class RegionsUnavailable(RuntimeError):
    """Neither a stored region table nor the dataset itself gives a dataset's regions."""


def dataset_regions(ctx: ReportContext, dataset: str) -> pd.DataFrame:
    """The region table (label, network, x, y, z, ...) the runs of ``dataset`` used, in region order.

    Read from the results folder (`ResultsStore.load_regions`), so the report needs no
    dataset files; a folder from before region tables were stored falls back to resolving
    the dataset. Raises `RegionsUnavailable`, saying why, when both fail.
    """
    if dataset not in ctx.region_tables:
        try:
            ctx.region_tables[dataset] = ctx.store.load_regions(dataset)
        except FileNotFoundError as stored:
            try:
                ctx.region_tables[dataset] = resolve_brain(ctx, dataset).regions.reset_index(drop=True)
            except Exception as err:  # noqa: BLE001 — any failure to load the dataset: said in the report
                ctx.region_tables[dataset] = RegionsUnavailable(
                    f"the results folder stores no region table for it ({stored}) and the dataset could not "
                    f"be loaded for its region coordinates ({type(err).__name__}: {err})"
                )
    table = ctx.region_tables[dataset]
    if isinstance(table, RegionsUnavailable):
        raise table
    return table


def nulls_files(ctx: ReportContext, dataset: str) -> dict[str, Path]:
    """Family label → existing null-set file of ``dataset`` (manifest ``nulls_files``; old: ``nulls_file``)."""
    info = ctx.manifest.get("datasets", {}).get(dataset, {})
    files = dict(info.get("nulls_files") or {})
    if not files and info.get("nulls_file"):  # a manifest from before families side by side
        files = {ctx.family or next(iter(ctx.family_settings), "nulls"): info["nulls_file"]}
    paths = {label: ctx.store.recorded_path(rel) for label, rel in files.items()}
    return {label: path for label, path in paths.items() if path.exists()}
