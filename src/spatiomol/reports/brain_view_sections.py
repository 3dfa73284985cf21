"""Glass-brain views of a dataset: test connectomes and per-region accuracy on the brain, and interactive pages.

`brain_views` draws one split's observed and predicted test edges on nilearn glass brains
(and, for ``report.html``, interactive `view_connectome` pages); `region_accuracy_view`
draws the per-region test accuracy of the best and the best linear model
(`mean_region_accuracy`). Region labels and coordinates come from the stored region
table (`spatiomol.reports.context.dataset_regions`); the drawing is
`spatiomol.reports.brain`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spatiomol.reports import figures, stats, tables
from spatiomol.reports.context import RegionsUnavailable, ReportContext, best_model, dataset_regions, slug
from spatiomol.reports.document import Block, Figure, Interactive, Paragraph


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
        blocks.append(Figure(path=path, alt=f"{dataset}, {title}", caption=f"Glass brain, {dataset}, {title} ({cut})"))
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
    return [Figure(path=path, alt=f"{dataset}, {title}", caption=f"Per-region accuracy, {which}, {dataset}, {title}")]


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
