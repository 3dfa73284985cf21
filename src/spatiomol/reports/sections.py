"""The sections of a report, one function each; `spatiomol.reports.report.write_report` composes them.

Every section takes the `ReportContext` (and a dataset where it is per dataset), writes
its CSV tables / PNG figures under the report folder and returns the `document` blocks
that show them; ``report.md`` and ``report.html`` are both rendered from those blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.experiments.store import CHECK_NONE, CHECK_NOT_TRAINED, ResultsStore
from spatiomol.nulls import CALIBRATED_METHODS
from spatiomol.reports import figures, null_families, stats, tables, verdict
from spatiomol.reports.document import Block, Bullets, Figure, Heading, Interactive, Paragraph, Quote, Table

STAT_COLUMNS = [
    "split_type",
    "model",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "sd_diff",
    "effect_dz",
    "rank_biserial",
    "wilcoxon_p",
    "signflip_p",
    "wilcoxon_p_bh",
    "signflip_p_bh",
]
#: columns of the null-families table (`null_families.family_comparisons`, plus the rank test)
FAMILY_COLUMNS = [
    "split_type",
    "model",
    "null_family",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "sd_diff",
    "effect_dz",
    "signflip_p",
    "signflip_p_bh",
    "beats",
    "rank_nulls",
    "rank_p",
]
#: split types in the order the report shows them
SPLIT_ORDER = ("random", "spatial")


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
        Whether to draw the nilearn glass-brain figures (`brain_views`).
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


def _split_types(sub: pd.DataFrame) -> list[str]:
    return [k for k in SPLIT_ORDER if k in set(sub["split_type"])]


def _resolve(ctx: ReportContext, dataset: str):
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
                ctx.region_tables[dataset] = _resolve(ctx, dataset).regions.reset_index(drop=True)
            except Exception as err:  # noqa: BLE001 — any failure to load the dataset: said in the report
                ctx.region_tables[dataset] = RegionsUnavailable(
                    f"the results folder stores no region table for it ({stored}) and the dataset could not "
                    f"be loaded for its region coordinates ({type(err).__name__}: {err})"
                )
    table = ctx.region_tables[dataset]
    if isinstance(table, RegionsUnavailable):
        raise table
    return table


# ------------------------------------------------------------ header, provenance
def header_section(ctx: ReportContext, n_runs: int) -> list[Block]:
    """Title, notes, run counts, protocol and package versions."""
    config, manifest = ctx.config, ctx.manifest
    blocks: list[Block] = [Heading(f"Results: {config.get('name', ctx.store.root.name)}", 1)]
    if config.get("notes"):
        blocks.append(Quote(config["notes"].strip()))
    versions = f"versions: {json.dumps(manifest.get('versions', {}))}"
    if "transfer" in config and "repeats" not in config:
        return [
            *blocks,
            Bullets((f"runs: {n_runs} finished; transfer settings: {json.dumps(config['transfer'])}", versions)),
        ]
    tuned = config.get("tuning", True)
    untuned = (
        f" (default configuration for {', '.join(config['untuned_models'])})"
        if tuned and config.get("untuned_models")
        else ""
    )
    items = [
        f"runs: {n_runs} finished (of {manifest.get('planned_runs', '?')} planned); "
        f"splits: {config.get('repeats', '?')} repeat(s) × {config.get('folds', '?')} folds; "
        f"hyperparameters: {'nested inner-CV selection' if tuned else 'default configuration'}{untuned}",
        "every cell: mean ± SD (ddof=1) over splits; targets on the dataset's scale; "
        "MSE in squared target units; geodesic = affine-invariant Riemannian distance",
    ]
    families = family_settings(ctx)
    if families and (ctx.rows["input"] == "null").any():
        items.append(
            f"nulls: {len(families)} famil{'y' if len(families) == 1 else 'ies'}, each with its own null runs "
            "(one null per K-fold split: every fold of repeat r uses null r mod top; null runs cover "
            "max(repeats, top) repeats, so each kept null is scored once)"
        )
        for label, settings in families.items():
            shown = " — shown in Tables 1–3" if label == ctx.family and len(families) > 1 else ""
            items.append(f"null family {null_families.describe_family(label, settings)}{shown}")
    items.append(versions)
    return [*blocks, Bullets(tuple(items))]


def provenance_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Dataset heading with its size and the SHA-256 of its expression and connectome."""
    info = ctx.manifest.get("datasets", {}).get(dataset, {})
    blocks: list[Block] = [Heading(dataset, 2)]
    if info:
        blocks.append(
            Paragraph(
                f"{info.get('n_regions')} regions, {info.get('n_genes')} genes; "
                f"X sha256 {info.get('X_sha256')}, Y sha256 {info.get('Y_sha256')}"
            )
        )
    return blocks


def failures_section(ctx: ReportContext, ids: set[str] | None) -> list[Block]:
    """First line of each failure record of a current run."""
    failures = ctx.store.failure_paths()
    if ids is not None:
        failures = [f for f in failures if f.stem in ids]
    if not failures:
        return []
    return [Heading("Failed runs", 2), Bullets(tuple(f.read_text().splitlines()[0] for f in failures))]


# -------------------------------------------------------------------- transfer
def transfer_section(ctx: ReportContext, transfer: pd.DataFrame) -> list[Block]:
    """Cross-dataset transfer table (App. A.6); writes ``tables/transfer.csv``."""
    if transfer.empty:
        return []
    from spatiomol.experiments.transfer import transfer_table

    table = transfer_table(transfer)
    table.to_csv(ctx.tables_dir / "transfer.csv", index=False)
    return [
        Heading("Cross-dataset transfer (App. A.6)", 2),
        Paragraph(
            "Trained on every edge of the source (shared genes), scored on every edge of the target; "
            "null = same model trained on a CGE-matched null of the source. gain_r = r(true) − r(null)."
        ),
        Table(table, index=False),
    ]


# ---------------------------------------------------------------- diagnostics
def nulls_files(ctx: ReportContext, dataset: str) -> dict[str, Path]:
    """Family label → existing null-set file of ``dataset`` (manifest ``nulls_files``; old: ``nulls_file``)."""
    info = ctx.manifest.get("datasets", {}).get(dataset, {})
    files = dict(info.get("nulls_files") or {})
    if not files and info.get("nulls_file"):  # a manifest from before families side by side
        files = {ctx.family or next(iter(ctx.family_settings), "nulls"): info["nulls_file"]}
    paths = {label: ctx.store.recorded_path(rel) for label, rel in files.items()}
    return {label: path for label, path in paths.items() if path.exists()}


def own_expression_fraction(nullset) -> np.ndarray:
    """(top,) fraction of regions each null leaves with their own expression row.

    ``1 − moved_fraction`` of the `NullSet`'s parameters, where rows the null replaces
    with new expression (Moran, variogram, non-cortical Moran of the spins) count as
    moved; an old file without that column falls back to the permutations (no replaced
    rows then).
    """
    r = nullset.permutations.shape[1]
    if "moved_fraction" in nullset.parameters:
        moved = nullset.parameters["moved_fraction"].to_numpy(dtype=np.float64)
        return np.round((1.0 - moved) * r) / r  # a count of regions over r (no float residue at 0.5 %)
    same = nullset.permutations == np.arange(r)
    same[:, nullset.replaced_regions] = False
    return same.mean(axis=1)


def nulls_diagnostic(nullset, label: str) -> str:
    """One line: how much of the brain a family's kept nulls leave with its own expression."""
    own = own_expression_fraction(nullset)
    meta = nullset.metadata
    matched = meta.get("cge_match", meta.get("method") != "random")  # format 1 had no cge_match
    floor = meta.get("min_moved")
    if not matched:
        rule = "not CGE-matched: the first draws"
    elif floor:
        rule = f"selection required ≥ {floor:.0%} of regions moved"
    else:
        rule = "no floor on regions moved (Algorithm 1 verbatim)"
    r, q = nullset.permutations.shape[1], nullset.replaced_regions.size
    how = (
        "every region's row is new expression"
        if q == r
        else f"{q} of {r} regions get new expression rows, the others are permuted"
        if q
        else "rows are permuted"
    )
    return (
        f"`{label}`: the {len(own)} nulls leave {own.min():.0%}–{own.max():.0%} (median {np.median(own):.0%}) "
        f"of regions with their own expression ({rule}; {how})"
    )


def nulls_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """How many regions each family's nulls of the dataset leave with their own expression."""
    files = nulls_files(ctx, dataset)
    if not files:
        return []
    from spatiomol.nulls import NullSet

    lines = tuple(nulls_diagnostic(NullSet.load(path), label) for label, path in files.items())
    return [
        Paragraph(
            "Null diagnostic (a null that leaves many regions with their own expression is close to the "
            "true brain and shrinks true − null gaps; replaced rows count as moved):"
        ),
        Bullets(lines),
    ]


# ---------------------------------------------------------------------- tables
def not_trained_counts(rows: pd.DataFrame, dataset: str) -> dict[str, tuple[int, int]]:
    """Model → (fits flagged *not trained*, fits checked) over ``dataset``'s runs (true and
    null inputs); models whose fits have no training check (closed-form) are left out."""
    if "training_check" not in rows:
        return {}
    runs = rows.loc[rows["dataset"] == dataset, ["run_id", "model", "training_check"]].drop_duplicates("run_id")
    runs = runs[runs["training_check"] != CHECK_NONE]
    flagged = runs["training_check"].str.startswith(CHECK_NOT_TRAINED)
    return {
        str(model): (int(flagged[group.index].sum()), len(group)) for model, group in runs.groupby("model", sort=False)
    }


def not_trained_blocks(counts: dict[str, tuple[int, int]]) -> list[Block]:
    """A warning naming each model with fits that did not train (nothing when none)."""
    bad = {m: c for m, c in counts.items() if c[0]}
    if not bad:
        return []
    listed = "; ".join(f"{tables.display(m)}: {k} of {n} fits" for m, (k, n) in bad.items())
    return [
        Paragraph(
            f"**Warning: fits that did not train** ({listed}). Their training loss never fell below "
            "0.95 x its first epoch's (nor the validation loss, where there was one), or their predictions' SD "
            "on the training edges stayed below 10% of the targets' (`spatiomol.models.diagnosis."
            "training_diagnosis`). They are included in every mean below; the column 'not trained' counts them "
            "per model and the runs' `training_check` field (parts/*.parquet) names the reasons."
        )
    ]


def table1_section(ctx: ReportContext, dataset: str) -> list[Block]:
    formatted, numeric = tables.table1(ctx.summary, dataset)
    counts = not_trained_counts(ctx.rows, dataset)
    if counts:
        by_name = {tables.display(m): c for m, c in counts.items()}
        formatted["not trained"] = [
            f"{by_name[n][0]} of {by_name[n][1]}" if n in by_name else "–" for n in formatted.index
        ]
        numeric["not trained"] = [by_name[n][0] if n in by_name else np.nan for n in numeric.index]
        numeric["fits checked"] = [by_name[n][1] if n in by_name else np.nan for n in numeric.index]
    numeric.to_csv(ctx.tables_dir / f"table1_{slug(dataset)}.csv")
    blocks: list[Block] = [Heading("Table 1: global test performance", 3), *not_trained_blocks(counts)]
    if ctx.family is not None:
        others = (
            f", the first of the {len(ctx.families)} families run side by side; 'True input vs each null "
            "family' compares them all"
            if len(ctx.families) > 1
            else ""
        )
        blocks.append(Paragraph(f"null = the model trained on null expression{shown_family_note(ctx)}{others}."))
    return [*blocks, Table(formatted)]


def table2_section(ctx: ReportContext, dataset: str) -> list[Block]:
    formatted, numeric = tables.table2(ctx.summary, dataset)
    numeric.to_csv(ctx.tables_dir / f"table2_{slug(dataset)}.csv")
    return [Heading("Table 2: stratified test Pearson r", 3), Table(formatted)]


def table3_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """One Table 3 per ``variant_splits`` split type that has variant runs."""
    blocks: list[Block] = []
    for split_type in ctx.config.get("variant_splits") or ["random"]:
        formatted, numeric = tables.table3(
            ctx.summary, dataset, split_type=split_type, variants=ctx.config.get("variants") or None
        )
        if formatted.empty:
            continue
        numeric.to_csv(ctx.tables_dir / f"table3_{slug(dataset)}_{split_type}.csv", index=False)
        blocks += [
            Heading(f"Table 3: null models with varying feature access ({split_type} splits)", 3),
            Paragraph(
                f"SM = spatiomolecular null expression{shown_family_note(ctx)}; "
                "permuted = uniform random shuffle of rows."
            ),
            Table(formatted, index=False),
        ]
    return blocks


def paired_statistics_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """True vs null, and each model vs the best linear model, paired over splits."""
    sub = ctx.df[ctx.df["dataset"] == dataset]
    name = slug(dataset)
    blocks: list[Block] = []
    tvn = stats.true_vs_null(sub, n_permutations=ctx.n_permutations, seed=ctx.seed)
    if not tvn.empty:
        tvn.to_csv(ctx.tables_dir / f"stats_true_vs_null_{name}.csv", index=False)
        view = tvn[STAT_COLUMNS].copy()
        view["model"] = view["model"].map(tables.display)
        blocks += [
            Heading("True vs null expression, paired over splits (test Pearson r)", 3),
            Paragraph(
                f"a = true, b = null{shown_family_note(ctx)}; d_z = mean/SD of differences; "
                "BH = Benjamini–Hochberg over this table. Splits of repeated CV overlap, so p-values are descriptive."
            ),
            Table(view, index=False),
        ]
    vbl = stats.versus_best_linear(sub, n_permutations=ctx.n_permutations, seed=ctx.seed)
    if not vbl.empty:
        vbl.to_csv(ctx.tables_dir / f"stats_vs_best_linear_{name}.csv", index=False)
        view = vbl[["reference", *STAT_COLUMNS]].copy()
        view["model"] = view["model"].map(tables.display)
        view["reference"] = view["reference"].map(tables.display)
        blocks += [
            Heading("Each model vs the best linear model (true expression, test Pearson r)", 3),
            Paragraph("a = model, b = reference (best bilinear model by mean r on that split type)."),
            Table(view, index=False),
        ]
    return blocks


# ---------------------------------------------------------- null families
def smallest_signflip_p(n: int) -> float:
    """Smallest two-sided exact sign-flip p with ``n`` paired splits: 2 of the 2ⁿ sign patterns, 2/2ⁿ."""
    return 2.0 / 2.0**n


def family_settings(ctx: ReportContext) -> dict[str, dict[str, Any]]:
    """Label → settings of the folder's null families (the context's, else the manifest's)."""
    return ctx.family_settings or null_families.manifest_families(ctx.manifest)


def calibration_text(ctx: ReportContext, families: Sequence[str]) -> str:
    """Which of ``families`` have a calibrated rank verdict (`spatiomol.nulls.CALIBRATED_METHODS`)."""
    settings = family_settings(ctx)
    calibrated = [f for f in families if settings.get(f, {}).get("method") in CALIBRATED_METHODS]
    others = [f for f in families if f not in calibrated]
    text = (
        "On simulated brains whose expression carries nothing beyond Euclidean space, the rank verdict of "
        f"{' and '.join(f'`{m}`' for m in CALIBRATED_METHODS)} nulls kept its false-positive rate at or below "
        f"{verdict.ALPHA}, the other families did not, and the paired test did not with any family "
        "(docs/calibration.md). "
    )
    if calibrated:
        text += f"Calibrated here: {', '.join(f'`{f}`' for f in calibrated)}. "
    if others:
        text += f"Not calibrated (read as descriptive): {', '.join(f'`{f}`' for f in others)}."
    return text.rstrip()


def family_verdicts(ctx: ReportContext, rows: pd.DataFrame) -> pd.DataFrame:
    """`null_families.family_comparisons` of ``rows`` plus the rank test's ``rank_nulls``, ``rank_p``, ``rank_reject``.

    The rank test (`spatiomol.reports.verdict.true_vs_nulls`, one verdict per family)
    compares the true input's mean score with each null's mean score.
    """
    comparisons = null_families.family_comparisons(
        rows, families=ctx.families, n_permutations=ctx.n_permutations, seed=ctx.seed
    )
    if comparisons.empty:
        return comparisons
    keys = [*null_families.COMPARISON_KEYS, null_families.FAMILY_COLUMN]
    rank = verdict.true_vs_nulls(rows, family=null_families.FAMILY_COLUMN)
    if rank.empty:
        return comparisons.assign(rank_nulls=0, rank_p=np.nan, rank_min_p=np.nan, rank_reject=np.nan)
    rank = rank[[*keys, "n_nulls", "p", "min_p", "reject"]].rename(
        columns={"n_nulls": "rank_nulls", "p": "rank_p", "min_p": "rank_min_p", "reject": "rank_reject"}
    )
    return comparisons.merge(rank, on=keys, how="left")


def null_families_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Per model, the true input against each null family: paired statistics, consensus lines, figure.

    Writes ``tables/null_families_<dataset>.csv`` (one row per split type × model ×
    family) and ``tables/null_families_consensus_<dataset>.csv``, and per split type
    ``figures/null_families_<dataset>_<split>.png`` (`null_families.draw_null_families`).
    """
    rows = ctx.rows[ctx.rows["dataset"] == dataset]
    if not (rows["input"] == "null").any():
        return []
    comparisons = family_verdicts(ctx, rows)
    if comparisons.empty:
        return []
    name = slug(dataset)
    comparisons.to_csv(ctx.tables_dir / f"null_families_{name}.csv", index=False)
    paired = null_families.consensus(comparisons, families=ctx.families)
    ranked = null_families.consensus(comparisons, beats="rank_reject", families=ctx.families)
    agreed = paired.merge(
        ranked[[*null_families.COMPARISON_KEYS, "line"]].rename(columns={"line": "rank_line"}),
        on=list(null_families.COMPARISON_KEYS),
    )
    agreed.assign(**{c: agreed[c].map("; ".join) for c in ("beaten", "not_beaten", "no_data")}).to_csv(
        ctx.tables_dir / f"null_families_consensus_{name}.csv", index=False
    )

    splits = sorted({int(n) for n in comparisons["n"] if n > 0})
    families = list(dict.fromkeys(comparisons[null_families.FAMILY_COLUMN]))
    design = f"{ctx.config.get('repeats', '?')} repeat(s) × {ctx.config.get('folds', '?')} folds"
    n_text = f"n = {splits[0]}" if len(splits) == 1 else f"n = {splits[0]}–{splits[-1]}"
    floor = smallest_signflip_p(max(splits)) if splits else float("nan")
    text = (
        f"Each model trained on true expression against the same model trained on each null family's "
        f"expression ({', '.join(f'`{f}`' for f in families)}), paired over the splits: {n_text} splits per "
        f"comparison ({design}). a = true, b = the family's null; a model **beats** a family when its true "
        f"input scores higher on average and the Benjamini–Hochberg-adjusted sign-flip p (over this table) "
        f"is ≤ {null_families.ALPHA}. With n splits the smallest exact two-sided sign-flip p is 2/2ⁿ: "
        f"{floor:.3g} here; with 4 splits (e.g. the demo's 1 repeat × 4 folds) it is "
        f"{smallest_signflip_p(4):.3g}, so a run of that size cannot reject whatever the gap. "
        "Splits of repeated CV overlap, so these p-values are descriptive."
    )
    if splits and floor > null_families.ALPHA:
        text += f" **With {max(splits)} splits no family can be beaten at α = {null_families.ALPHA}.**"
    nulls_k = sorted({int(k) for k in comparisons["rank_nulls"].dropna()})
    k_text = f"here K = {', '.join(map(str, nulls_k))} (smallest p {1 / (1 + max(nulls_k)):.3g}); " if nulls_k else ""
    rank_text = (
        "Rank test (`spatiomol.reports.verdict`): the true input's mean score against each of the family's "
        "K nulls' mean scores, p = (1 + #nulls scoring as well)/(1 + K), `rank_nulls` = K; "
        f"{k_text}it can reject at {verdict.ALPHA} only with K ≥ {verdict.min_nulls()} nulls "
        "(each null scored on its own repeat: K = `nulls.top`). " + calibration_text(ctx, families)
    )
    view = comparisons.reindex(columns=FAMILY_COLUMNS).copy()
    view["model"] = view["model"].map(tables.display)
    view["beats"] = view["beats"].map({True: "yes", False: "no"})
    lines = []
    for record in agreed.to_dict("records"):
        lines.append(
            f"{record['split_type']} splits, {tables.display(record['model'])}: {record['rank_line']} "
            f"(paired test: {record['line']})"
        )
    blocks: list[Block] = [
        Heading("True input vs each null family (test Pearson r)", 3),
        Paragraph(text),
        Table(view, index=False),
        Paragraph(rank_text),
        Paragraph("Consensus per model (rank verdict, the calibrated one; in brackets the paired test):"),
        Bullets(tuple(lines)),
    ]
    for split_type in _split_types(rows):
        if not ((rows["split_type"] == split_type) & (rows["input"] == "null")).any():
            continue
        fig = null_families.draw_null_families(rows, dataset, split_type, families=ctx.families)
        path = figures.save_figure(fig, ctx.figures_dir / f"null_families_{name}_{split_type}.png")
        caption = (
            f"{dataset}, {split_type} splits: test Pearson r of each null family's runs (one point per split, "
            "a box per family) against the mean score on true expression (line), one panel per model"
        )
        blocks.append(_figure(path, caption, caption))
    return blocks


# --------------------------------------------------------------------- figures
def connectome_run(ctx: ReportContext, dataset: str, split_type: str) -> dict[str, Any] | None:
    """The split whose test connectomes the report draws: first split of the best model.

    The best model is chosen among the models with null runs (so the prediction from a
    null can be shown), else among all; its lowest (repeat, fold).

    Returns
    -------
    dict with ``model``, ``repeat``, ``fold`` and ``run_ids`` {input: run id}, or None.
    """
    df, summary = ctx.df, ctx.summary
    runs = df[(df["dataset"] == dataset) & (df["split_type"] == split_type)][
        ["run_id", "model", "input", "repeat", "fold"]
    ].drop_duplicates()
    with_null = set(runs.loc[runs["input"] == "null", "model"])
    model = best_model(summary, dataset, split_type, candidates=with_null) or best_model(summary, dataset, split_type)
    if model is None:
        return None
    first = runs[runs["model"] == model].sort_values(["repeat", "fold"]).iloc[0]
    pick = runs[(runs["model"] == model) & (runs["repeat"] == first["repeat"]) & (runs["fold"] == first["fold"])]
    run_ids = {
        inp: str(pick.loc[pick["input"] == inp, "run_id"].iloc[0])
        for inp in ("true", "null")
        if inp in set(pick["input"])
    }
    return {"model": model, "repeat": int(first["repeat"]), "fold": int(first["fold"]), "run_ids": run_ids}


def connectome_edges(ctx: ReportContext, run: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{panel title: (i, j, values)}: observed test edges, then the prediction of each input."""
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for inp, rid in run["run_ids"].items():
        try:
            p = ctx.store.load_predictions(rid)
        except FileNotFoundError:
            continue
        if not edges:
            edges["observed (test edges)"] = (p["i"], p["j"], p["y_true"])
        edges[f"predicted, {inp} expression"] = (p["i"], p["j"], p["y_pred"])
    return edges


def _figure(path: Path, alt: str, caption: str) -> Figure:
    return Figure(path=path, alt=alt, caption=caption)


def figures_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Test connectomes, brain views, Fig. 5B per-network gain, Fig. 5C parameters, Fig. 3 CGE curves."""
    sub = ctx.df[ctx.df["dataset"] == dataset]
    name = slug(dataset)
    fdir, tdir = ctx.figures_dir, ctx.tables_dir
    blocks: list[Block] = [Heading("Figures", 3)]
    interactive: list[Block] = []
    for split_type in _split_types(sub):
        run = connectome_run(ctx, dataset, split_type)
        edges = connectome_edges(ctx, run) if run else {}
        if edges:
            caption = (
                f"{dataset}, {split_type} split, repeat {run['repeat']} fold {run['fold']}: "
                f"{tables.display(run['model'])}, observed vs predicted test connectome (test regions in index order)"
                f"{shown_family_note(ctx) if 'null' in run['run_ids'] else ''}"
            )
            panels = {t: {"i": i, "j": j, "values": v} for t, (i, j, v) in edges.items()}
            path = figures.plot_test_connectomes(panels, caption, fdir / f"connectomes_{name}_{split_type}.png")
            blocks.append(_figure(path, caption, caption))
        if ctx.brain_views:
            try:
                brain_blocks, views = brain_views(ctx, dataset, split_type, run, edges)
            except Exception as err:  # noqa: BLE001 — a figure must not sink the report
                brain_blocks, views = [Paragraph(f"_Brain views not drawn: {type(err).__name__}: {err}_")], []
            blocks += brain_blocks
            if not interactive:  # one split type's interactive views per dataset (each page is ~2.5 MB)
                interactive = views
        not_linear = [m for m in dict.fromkeys(sub["model"]) if m not in stats.linear_models(sub["model"])]
        best = best_model(ctx.summary, dataset, split_type, candidates=not_linear)
        reference = stats.best_linear_model(sub, dataset, split_type)
        if best and reference and best != reference:
            gain = tables.network_gain(ctx.summary, dataset, split_type, best, reference)
            if not gain.empty:
                gain.to_csv(tdir / f"network_gain_{name}_{split_type}.csv", index=False)
                title = (
                    f"{dataset}, {split_type}: {tables.display(best)} − {tables.display(reference)} "
                    f"(mean test r per network)"
                )
                path = figures.plot_network_gain(gain, title, fdir / f"network_gain_{name}_{split_type}.png")
                blocks.append(_figure(path, title, f"Fig. 5B-style: {title}"))
    blocks += parameters_figure(ctx, dataset)
    blocks += cge_figures(ctx, dataset)
    return blocks + interactive


def parameters_figure(ctx: ReportContext, dataset: str) -> list[Block]:
    """Fig. 5C: test r against learned parameters (spatial splits when run, else the first type)."""
    sub = ctx.df[ctx.df["dataset"] == dataset]
    summary = ctx.summary
    params_split = "spatial" if "spatial" in set(sub["split_type"]) else sub["split_type"].iloc[0]
    s = summary[
        (summary["dataset"] == dataset)
        & (summary["split_type"] == params_split)
        & (summary["input"] == "true")
        & (summary["metric"] == "pearson")
        & (summary["stratum"] == "all")
    ]
    if s.empty:
        return []
    points = pd.DataFrame(
        {"label": s["model"].map(tables.display), "n_parameters": s["n_parameters"], "mean": s["mean"], "sd": s["sd"]}
    )
    name = slug(dataset)
    points.to_csv(ctx.tables_dir / f"parameters_{name}.csv", index=False)
    title = f"{dataset}, {params_split} split: test r vs learned parameters"
    path = figures.plot_parameters(points, title, ctx.figures_dir / f"parameters_{name}.png")
    return [_figure(path, title, f"Fig. 5C-style: {title}")]


def cge_figures(ctx: ReportContext, dataset: str) -> list[Block]:
    """Fig. 3-style CGE–distance curves of the true brain and each family's cached nulls.

    One figure per null family (``figures/cge_distance_<dataset>.png`` with one family,
    ``cge_distance_<dataset>_<family>.png`` with several); a figure that fails is
    replaced by a line saying why.
    """
    from spatiomol.nulls import NullSet
    from spatiomol.reports.cge_figure import plot_cge_curves

    files = nulls_files(ctx, dataset)
    blocks: list[Block] = []
    brain = None
    for label, path in files.items():
        name = f"cge_distance_{slug(dataset)}" + (f"_{slug(label)}" if len(files) > 1 else "")
        try:
            brain = brain if brain is not None else _resolve(ctx, dataset)
            png = plot_cge_curves(brain, NullSet.load(path), ctx.figures_dir / f"{name}.png")
        except Exception as err:  # noqa: BLE001 — a figure must not sink the report
            blocks.append(Paragraph(f"_CGE–distance figure of `{label}` not drawn: {type(err).__name__}: {err}_"))
            continue
        caption = f"CGE–distance curves of {dataset}: true brain and its `{label}` nulls"
        blocks.append(_figure(png, f"CGE vs distance, {label} nulls", caption))
    return blocks


# ------------------------------------------------------------------ brain views
def mean_region_accuracy(ctx: ReportContext, dataset: str, split_type: str, model: str, n_regions: int) -> np.ndarray:
    """Per-region test Pearson r of ``model`` (true input), averaged over the splits that test the region.

    Each run's stored test edges give every test region an r over its edges to the other
    test regions (`spatiomol.reports.brain.region_accuracy`); in K-fold CV every region
    is tested once per repeat, so the mean is over repeats. NaN for a region never scored.
    """
    from spatiomol.reports.brain import region_accuracy

    rows = ctx.df[
        (ctx.df["dataset"] == dataset)
        & (ctx.df["split_type"] == split_type)
        & (ctx.df["model"] == model)
        & (ctx.df["input"] == "true")
    ]
    per_run = []
    for rid in sorted(set(rows["run_id"])):
        try:
            p = ctx.store.load_predictions(rid)
        except FileNotFoundError:
            continue
        per_run.append(region_accuracy(p["i"], p["j"], p["y_true"], p["y_pred"], n_regions))
    if not per_run:
        return np.full(n_regions, np.nan)
    stack = np.vstack(per_run)
    counts = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)


def brain_views(
    ctx: ReportContext,
    dataset: str,
    split_type: str,
    run: dict[str, Any] | None,
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[list[Block], list[Block]]:
    """Glass-brain connectomes and per-region accuracy markers (PNG + CSV), and interactive views.

    Region labels and coordinates come from `dataset_regions` (the table the runs stored);
    when no table can be had, one paragraph says the views were dropped and why.

    Returns
    -------
    (figure blocks for both reports, interactive blocks for the HTML report)
    """
    from spatiomol.reports import brain as views

    try:
        regions_table = dataset_regions(ctx, dataset)
    except RegionsUnavailable as err:
        return [Paragraph(f"**Brain views of {dataset} ({split_type} splits) dropped:** {err}.")], []
    coords = regions_table[["x", "y", "z"]].to_numpy(dtype=np.float64)
    name = slug(dataset)
    blocks: list[Block] = []
    interactive: list[Block] = []
    if edges:
        panels = views.connectome_panels(edges)
        regions, thresholds = panels["regions"], panels["thresholds"]
        _strong_edges_table(panels, regions_table["label"].to_numpy()).to_csv(
            ctx.tables_dir / f"brain_edges_{name}_{split_type}.csv", index=False
        )
        title = (
            f"{split_type} split, repeat {run['repeat']} fold {run['fold']}: {tables.display(run['model'])}; "
            f"each panel's {panels['n_strong']} strongest edges, colour scale ±{panels['vmax']:.3f}"
        )
        fig = views.draw_glass_connectomes(panels["matrices"], coords[regions], thresholds, panels["vmax"], title)
        path = figures.save_figure(fig, ctx.figures_dir / f"brain_connectome_{name}_{split_type}.png")
        cut = ", ".join(f"{t} |value| > {v:.3f}" for t, v in thresholds.items())
        blocks.append(_figure(path, f"{dataset}, {title}", f"Glass brain, {dataset}, {title} ({cut})"))
        if ctx.interactive:
            for panel, matrix in panels["matrices"].items():
                page = views.connectome_view_page(
                    matrix,
                    coords[regions],
                    thresholds[panel],
                    panels["vmax"],
                    f"{panel} ({tables.display(run['model'])})",
                )
                interactive.append(
                    Interactive(
                        page=page,
                        caption=f"Interactive: {dataset}, {split_type} split, {panel}; {title} "
                        f"(|value| > {thresholds[panel]:.3f})",
                        title="Interactive brain views" if not interactive else "",
                    )
                )
    return blocks + region_accuracy_view(ctx, dataset, split_type, regions_table), interactive


def region_accuracy_view(ctx: ReportContext, dataset: str, split_type: str, regions: pd.DataFrame) -> list[Block]:
    """Per-region accuracy of the best and the best linear model: ``tables/region_accuracy_*.csv``
    and, when any region was scored, the glass-brain markers (``regions``: `dataset_regions`)."""
    from spatiomol.reports import brain as views

    sub = ctx.df[ctx.df["dataset"] == dataset]
    best, linear = best_model(ctx.summary, dataset, split_type), stats.best_linear_model(sub, dataset, split_type)
    models = [m for m in dict.fromkeys([best, linear]) if m]
    if not models:
        return []
    name = slug(dataset)
    accuracy = {m: mean_region_accuracy(ctx, dataset, split_type, m, len(regions)) for m in models}
    table = regions[["label", "network", "x", "y", "z"]].copy()
    for m, v in accuracy.items():
        table[f"r_{m}"] = v
    table.to_csv(ctx.tables_dir / f"region_accuracy_{name}_{split_type}.csv", index=False)
    finite = np.concatenate([v[np.isfinite(v)] for v in accuracy.values()])
    if not finite.size:
        return []
    vmax = float(np.max(np.abs(finite)))
    title = (
        f"{split_type} splits: per-region test Pearson r of each test region's edges "
        f"(mean over repeats), colour scale ±{vmax:.2f}"
    )
    rows = {tables.display(m): v for m, v in accuracy.items()}
    coords = regions[["x", "y", "z"]].to_numpy(dtype=np.float64)
    fig = views.draw_region_markers(rows, coords, vmax, title)
    path = figures.save_figure(fig, ctx.figures_dir / f"brain_accuracy_{name}_{split_type}.png")
    which = {
        2: "best model and best linear model",
        1: "best model (also the best linear model)" if best == linear else "best model",
    }[len(models)]
    return [_figure(path, f"{dataset}, {title}", f"Per-region accuracy, {which}, {dataset}, {title}")]


def _strong_edges_table(panels: dict[str, Any], labels: np.ndarray) -> pd.DataFrame:
    """Edges drawn in any panel: every panel's value and whether that panel draws it."""
    regions = panels["regions"]
    a, b = np.triu_indices(regions.size, 1)
    drawn = {t: np.abs(m[a, b]) > panels["thresholds"][t] for t, m in panels["matrices"].items()}
    keep = np.logical_or.reduce(list(drawn.values()))
    table = pd.DataFrame({"region_i": labels[regions[a[keep]]], "region_j": labels[regions[b[keep]]]})
    for title, m in panels["matrices"].items():
        table[title] = m[a[keep], b[keep]]
    for title, mask in drawn.items():
        table[f"drawn: {title}"] = mask[keep]
    return table
