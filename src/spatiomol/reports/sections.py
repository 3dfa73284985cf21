"""The sections of a report, one function each; `spatiomol.reports.report.write_report` composes them.

Every section takes the `ReportContext` (and a dataset where it is per dataset), writes
its CSV tables / PNG figures under the report folder and returns the `document` blocks
that show them; ``report.md`` and ``report.html`` are both rendered from those blocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import figures, stats, tables
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
        Current rows (`spatiomol.reports.report.current_runs`) of the grid (no transfer).
    summary : DataFrame
        `spatiomol.reports.tables.split_summary` of every current row.
    manifest, config : dict
        The folder's manifest and its latest grid configuration.
    n_permutations, seed : int
        Sign-flip test settings (`spatiomol.reports.stats`).
    brain_views : bool
        Whether to draw the nilearn glass-brain figures (`brain_views`).
    interactive : bool
        Whether to build the interactive brain views (HTML report only).
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
    if s.empty:
        return None
    return str(s.loc[s["mean"].idxmax(), "model"])


def _split_types(sub: pd.DataFrame) -> list[str]:
    return [k for k in SPLIT_ORDER if k in set(sub["split_type"])]


def _load_brain(ctx: ReportContext, dataset: str):
    from spatiomol.data.sources import resolve_source

    return resolve_source(dataset, gene_order=ctx.config.get("gene_order", "as_given"))


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
    nulls = config.get("nulls", {})
    items = (
        f"runs: {n_runs} finished (of {manifest.get('planned_runs', '?')} planned); "
        f"splits: {config.get('repeats', '?')} repeat(s) × {config.get('folds', '?')} folds; "
        f"hyperparameters: {'nested inner-CV selection' if tuned else 'default configuration'}{untuned}",
        "every cell: mean ± SD (ddof=1) over splits; targets on the dataset's scale; "
        "MSE in squared target units; geodesic = affine-invariant Riemannian distance",
        f"nulls: top {nulls.get('top', '?')} of {nulls.get('n', '?')} spins by CGE match "
        "(one null per K-fold split: every fold of repeat r uses null r mod top)",
        versions,
    )
    return [*blocks, Bullets(items)]


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
    folder = ctx.store.root / "failures"
    failures = sorted(folder.glob("*.txt")) if folder.exists() else []
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
def nulls_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """How many regions the dataset's CGE-matched nulls leave with their own expression."""
    nulls_rel = ctx.manifest.get("datasets", {}).get(dataset, {}).get("nulls_file")
    if not nulls_rel or not (ctx.store.root / nulls_rel).exists():
        return []
    from spatiomol.nulls import NullSet

    nullset = NullSet.load(ctx.store.root / nulls_rel)
    kept = (nullset.permutations == np.arange(nullset.permutations.shape[1])).mean(axis=1)
    floor = nullset.metadata.get("min_moved")
    rule = (
        f"selection required ≥ {floor:.0%} of regions moved"
        if floor
        else "no floor on regions moved (Algorithm 1 verbatim)"
    )
    return [
        Paragraph(
            f"Null diagnostic: the {len(kept)} CGE-matched nulls leave "
            f"{kept.min():.0%}–{kept.max():.0%} (median {np.median(kept):.0%}) of regions with their own "
            f"expression ({rule}); a null that moves few regions is close to the true brain and shrinks "
            "true − null gaps."
        )
    ]


# ---------------------------------------------------------------------- tables
def table1_section(ctx: ReportContext, dataset: str) -> list[Block]:
    formatted, numeric = tables.table1(ctx.summary, dataset)
    numeric.to_csv(ctx.tables_dir / f"table1_{slug(dataset)}.csv")
    return [Heading("Table 1: global test performance", 3), Table(formatted)]


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
            Paragraph("SM = CGE-matched spatiomolecular null expression; permuted = uniform random shuffle of rows."),
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
                "a = true, b = null; d_z = mean/SD of differences; BH = Benjamini–Hochberg over this table. "
                "Splits of repeated CV overlap, so p-values are descriptive."
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
    try:
        cge = cge_figure(ctx, dataset)
    except Exception as err:  # noqa: BLE001 — a figure must not sink the report
        cge = None
        blocks.append(Paragraph(f"_CGE–distance figure not drawn: {type(err).__name__}: {err}_"))
    if cge is not None:
        blocks.append(
            _figure(cge, "CGE vs distance", f"CGE–distance curves of {dataset}: true brain and its top nulls")
        )
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


def cge_figure(ctx: ReportContext, dataset: str) -> Path | None:
    """Fig. 3-style CGE–distance curves of the true brain and its cached nulls (nulls stage's figure)."""
    from spatiomol.nulls import NullSet
    from spatiomol.reports.cge_figure import plot_cge_curves

    nulls_rel = ctx.manifest.get("datasets", {}).get(dataset, {}).get("nulls_file")
    if not nulls_rel or not (ctx.store.root / nulls_rel).exists():
        return None
    brain = _load_brain(ctx, dataset)
    return plot_cge_curves(
        brain, NullSet.load(ctx.store.root / nulls_rel), ctx.figures_dir / f"cge_distance_{slug(dataset)}.png"
    )


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

    Returns
    -------
    (figure blocks for both reports, interactive blocks for the HTML report)
    """
    from spatiomol.reports import brain as views

    brain = _load_brain(ctx, dataset)
    coords = brain.coords
    name = slug(dataset)
    blocks: list[Block] = []
    interactive: list[Block] = []
    if edges:
        panels = views.connectome_panels(edges)
        regions, thresholds = panels["regions"], panels["thresholds"]
        _strong_edges_table(panels, brain.labels).to_csv(
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
    sub = ctx.df[ctx.df["dataset"] == dataset]
    best, linear = best_model(ctx.summary, dataset, split_type), stats.best_linear_model(sub, dataset, split_type)
    models = [m for m in dict.fromkeys([best, linear]) if m]
    if models:
        accuracy = {m: mean_region_accuracy(ctx, dataset, split_type, m, brain.n_regions) for m in models}
        table = brain.regions[["label", "network", "x", "y", "z"]].copy()
        for m, v in accuracy.items():
            table[f"r_{m}"] = v
        table.to_csv(ctx.tables_dir / f"region_accuracy_{name}_{split_type}.csv", index=False)
        finite = np.concatenate([v[np.isfinite(v)] for v in accuracy.values()])
        if finite.size:
            vmax = float(np.max(np.abs(finite)))
            title = (
                f"{split_type} splits: per-region test Pearson r of each test region's edges "
                f"(mean over repeats), colour scale ±{vmax:.2f}"
            )
            rows = {tables.display(m): v for m, v in accuracy.items()}
            fig = views.draw_region_markers(rows, coords, vmax, title)
            path = figures.save_figure(fig, ctx.figures_dir / f"brain_accuracy_{name}_{split_type}.png")
            which = {
                2: "best model and best linear model",
                1: "best model (also the best linear model)" if best == linear else "best model",
            }[len(models)]
            blocks.append(_figure(path, f"{dataset}, {title}", f"Per-region accuracy, {which}, {dataset}, {title}"))
    return blocks, interactive


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
