"""The figure section of a dataset: test connectomes, brain views, per-network gain, parameters, CGE curves.

`figures_section` draws, per split type, the observed and predicted test connectome of
one split (`connectome_run`, `connectome_edges`), the glass-brain views
(`spatiomol.reports.brain_view_sections`) and the Fig. 5B per-network gain of the best
model over the best linear one (for a held-out protocol instead, `held_out_figure`: the test
r of both on each held-out system); then the Fig. 5C parameters plot (`parameters_figure`)
and the Fig. 3 CGE–distance curves of each null family (`cge_figures`). Figures are PNGs
under ``figures/``, their data CSVs under ``tables/``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spatiomol.evaluation.splits import HELD_OUT_KINDS, held_out_folds
from spatiomol.reports import figures, stats, tables
from spatiomol.reports.brain_view_sections import brain_views
from spatiomol.reports.context import (
    RegionsUnavailable,
    ReportContext,
    best_model,
    dataset_regions,
    nulls_files,
    resolve_brain,
    shown_family_note,
    slug,
    split_types,
)
from spatiomol.reports.document import Block, Figure, Heading, Paragraph


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
        ["run_id", "model", "input", "repeat", "fold", "null_index"]
    ].drop_duplicates()
    runs = runs.sort_values("null_index", kind="mergesort")  # the null run shown: null 0 of the split
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


def figures_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Test connectomes, brain views, Fig. 5B per-network gain, Fig. 5C parameters, Fig. 3 CGE curves."""
    sub = ctx.df[ctx.df["dataset"] == dataset]
    name = slug(dataset)
    fdir, tdir = ctx.figures_dir, ctx.tables_dir
    blocks: list[Block] = [Heading("Figures", 3)]
    interactive: list[Block] = []
    for split_type in split_types(sub):
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
            blocks.append(Figure(path=path, alt=caption, caption=caption))
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
        if split_type in HELD_OUT_KINDS and (best or reference):
            blocks += held_out_figure(ctx, dataset, split_type, [m for m in (best, reference) if m])
            missing = "linear model" if reference is None else "non-linear model" if best is None else None
            if missing:
                blocks.append(
                    Paragraph(f"_No {missing} has {split_type}-split runs: the held-out figure shows one model._")
                )
        elif best and reference and best != reference:
            gain = tables.network_gain(ctx.summary, dataset, split_type, best, reference)
            if not gain.empty:
                gain.to_csv(tdir / f"network_gain_{name}_{split_type}.csv", index=False)
                title = (
                    f"{dataset}, {split_type}: {tables.display(best)} − {tables.display(reference)} "
                    f"(mean test r per network)"
                )
                path = figures.plot_network_gain(gain, title, fdir / f"network_gain_{name}_{split_type}.png")
                blocks.append(Figure(path=path, alt=title, caption=f"Fig. 5B-style: {title}"))
    blocks += parameters_figure(ctx, dataset)
    blocks += cge_figures(ctx, dataset)
    return blocks + interactive


def held_out_scores(ctx: ReportContext, dataset: str, split_type: str, models: list[str]) -> pd.DataFrame:
    """Test r of each model on each held-out system of a held-out protocol (true input).

    Returns
    -------
    DataFrame with ``held_out, fold, model, pearson`` (mean over repeats; the held-out
    protocols have one), systems in fold order (`spatiomol.evaluation.splits.held_out_folds`
    of the stored region table).
    """
    names = [what for _, _, what in held_out_folds(dataset_regions(ctx, dataset), split_type, dataset)]
    sel = ctx.df[
        (ctx.df["dataset"] == dataset)
        & (ctx.df["split_type"] == split_type)
        & (ctx.df["input"] == "true")
        & (ctx.df["metric"] == "pearson")
        & (ctx.df["stratum"] == "all")
        & ctx.df["model"].isin(models)
    ]
    scores = sel.groupby(["fold", "model"])["value"].mean().reset_index(name="pearson")
    scores = scores[scores["fold"] < len(names)]
    scores.insert(0, "held_out", [names[f] for f in scores["fold"]])
    order = {m: k for k, m in enumerate(dict.fromkeys(models))}
    return scores.sort_values(["fold", "model"], key=lambda s: s.map(order) if s.name == "model" else s).reset_index(
        drop=True
    )


def held_out_figure(ctx: ReportContext, dataset: str, split_type: str, models: list[str]) -> list[Block]:
    """Bars of test r per held-out system for the best model and the best linear model (issue 27)."""
    models = list(dict.fromkeys(models))
    try:
        scores = held_out_scores(ctx, dataset, split_type, models)
    except (RegionsUnavailable, ValueError) as err:
        return [Paragraph(f"**Figure not drawn**: the held-out systems of {split_type} splits ({err}).")]
    if scores.empty:
        return []
    name = slug(dataset)
    scores.to_csv(ctx.tables_dir / f"held_out_{name}_{split_type}.csv", index=False)
    labels = " and ".join(tables.display(m) for m in models)
    title = f"{dataset}, {split_type} splits: test r on each held-out system ({labels})"
    path = figures.plot_held_out(scores, title, ctx.figures_dir / f"held_out_{name}_{split_type}.png")
    caption = (
        f"Transfer to held-out systems: {title}. A bar is missing where the held-out system has a single "
        "test edge (no Pearson r)."
    )
    return [Figure(path=path, alt=title, caption=caption)]


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
    return [Figure(path=path, alt=title, caption=f"Fig. 5C-style: {title}")]


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
            brain = brain if brain is not None else resolve_brain(ctx, dataset)
            png = plot_cge_curves(brain, NullSet.load(path), ctx.figures_dir / f"{name}.png")
        except Exception as err:  # noqa: BLE001 — a figure must not sink the report
            blocks.append(Paragraph(f"_CGE–distance figure of `{label}` not drawn: {type(err).__name__}: {err}_"))
            continue
        caption = f"CGE–distance curves of {dataset}: true brain and its `{label}` nulls"
        blocks.append(Figure(path=png, alt=f"CGE vs distance, {label} nulls", caption=caption))
    return blocks
