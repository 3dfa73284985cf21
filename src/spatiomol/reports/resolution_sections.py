"""The resolution ladder: the same models on several parcellations of one brain (the paper's
Tables 5–8 and its test-r-against-resolution figure).

When a results folder holds grid runs of two or more datasets with the same target (FC
beside FC, never beside SC: `ladder_groups`) and at least two numbers of regions, this
section puts them side by side, ordered by their number of regions: per split type, a table of test Pearson r
(mean ± SD over splits, n, and the shown null family's mean where null runs exist), the
paired difference of each SMT variant to its MLP counterpart (the MLP that reads the same
inputs) on every dataset, and a figure of test r against the number of regions with 95%
t-intervals, one line per model. It writes ``tables/resolution_ladder.csv`` and
``tables/resolution_ladder_pairs.csv``.

The paper's claim it tests: the SMT gains with resolution because more region pairs train
it, so that the SMT w/ [CLS] overtakes the MLP w/ coords somewhere up the ladder. A lead is
called one only where the 95% t-interval of the paired difference excludes 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spatiomol.experiments.store import checked_runs
from spatiomol.models import registry
from spatiomol.reports import figures, stats, tables
from spatiomol.reports.context import SPLIT_ORDER, ReportContext
from spatiomol.reports.document import Block, Figure, Heading, Paragraph, Table
from spatiomol.reports.verdict import t_interval


def counterpart(model: str) -> str | None:
    """The MLP reading the same inputs as SMT variant ``model`` (``smt`` → ``mlp``,
    ``smt-cls`` → ``mlp-coords``); None for a model that is not an SMT."""
    spec = registry.spec(model)
    smt, mlp = registry.spec("smt").estimator, registry.spec("mlp").estimator
    if spec.estimator != smt:
        return None
    for other in registry.MODELS.values():
        if other.estimator == mlp and other.table1 and registry.inputs(other.name) == registry.inputs(model):
            return other.name
    return None


def _datasets_by_size(df: pd.DataFrame, manifest: dict[str, Any]) -> list[tuple[str, int]]:
    info = manifest.get("datasets", {})
    present = dict.fromkeys(df.loc[df["input"] == "true", "dataset"])
    sized = [(d, int(info.get(d, {}).get("n_regions", -1))) for d in present]
    return sorted(sized, key=lambda item: (item[1], item[0]))


def _not_trained(df: pd.DataFrame) -> dict[tuple[str, str, str, str], int]:
    """(split type, model, dataset, input) → runs flagged *not trained*."""
    runs = checked_runs(df)
    runs = runs[runs["not_trained"]]
    return runs.groupby(["split_type", "model", "dataset", "input"]).size().to_dict()


def ladder_table(df: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """Test r per (split type, model, dataset) and input, over splits.

    Returns
    -------
    DataFrame with ``split_type, model, dataset, n_regions, n_genes, input, mean, sd, n,
    ci_low, ci_high, not_trained``: ``n`` splits (a null split's score is the mean over its
    nulls), ``ci_*`` the 95% t-interval of the mean (NaN below 2 splits), ``not_trained``
    the runs of the cell flagged *not trained* (included in the mean).
    """
    info = manifest.get("datasets", {})
    scores = stats.split_scores(df)
    flagged = _not_trained(df)
    rows = []
    for (split_type, model, dataset, inp), group in scores.groupby(["split_type", "model", "dataset", "input"]):
        values = group["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        n = values.size
        mean = float(values.mean()) if n else float("nan")
        sd = float(values.std(ddof=1)) if n > 1 else float("nan")
        low, high = t_interval(mean, sd, n)
        entry = info.get(dataset, {})
        rows.append(
            {
                "split_type": split_type,
                "model": model,
                "dataset": dataset,
                "n_regions": entry.get("n_regions"),
                "n_genes": entry.get("n_genes"),
                "input": inp,
                "mean": mean,
                "sd": sd,
                "n": n,
                "ci_low": low,
                "ci_high": high,
                "not_trained": flagged.get((split_type, model, dataset, inp), 0),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "split_type",
            "model",
            "dataset",
            "n_regions",
            "n_genes",
            "input",
            "mean",
            "sd",
            "n",
            "ci_low",
            "ci_high",
            "not_trained",
        ],
    )


def ladder_pairs(df: pd.DataFrame, n_permutations: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Each SMT variant against its MLP counterpart, paired over the splits both were scored on.

    Returns
    -------
    DataFrame with ``split_type, dataset, model, reference, n, mean_diff, sd_diff, ci_low,
    ci_high, n_ahead, signflip_p, lead``; ``lead`` is ``"ahead"`` / ``"behind"`` when the
    95% t-interval of the difference excludes 0, ``"level"`` when it holds 0, ``"n/a"`` below 2 splits.
    """
    scores = stats.split_scores(df)
    true = scores[scores["input"] == "true"]
    rows = []
    for (split_type, dataset), group in true.groupby(["split_type", "dataset"], sort=False):
        wide = group.pivot_table(index=["repeat", "fold"], columns="model", values="value", aggfunc="first")
        for model in wide.columns:
            reference = counterpart(model)
            if reference is None or reference not in wide.columns:
                continue
            contrast = stats.paired_contrast(wide, model, reference, n_permutations=n_permutations, seed=seed)
            if contrast is not None:
                rows.append(
                    {"split_type": split_type, "dataset": dataset, "model": model, "reference": reference, **contrast}
                )
    return pd.DataFrame(rows, columns=["split_type", "dataset", "model", "reference", *stats.CONTRAST_COLUMNS])


def _ladder_view(table: pd.DataFrame, split_type: str, datasets: list[tuple[str, int]]) -> pd.DataFrame:
    sub = table[table["split_type"] == split_type]
    null_means = {(r["model"], r["dataset"]): r["mean"] for r in sub[sub["input"] == "null"].to_dict("records")}

    def render(t) -> str:
        stuck = f"; **{int(t['not_trained'])} not trained**" if t["not_trained"] else ""
        text = f"{tables.format_cell(t['mean'], t['sd'], '.3f')} ({int(t['n'])}{stuck})"
        if (t["model"], t["dataset"]) in null_means:
            text += f"; null {null_means[(t['model'], t['dataset'])]:.3f}"
        return text

    rows = [(tables.display(m), {"model": m}) for m in tables.model_order(sub["model"])]
    cols = [(f"{d} ({n})", {"dataset": d}) for d, n in datasets]
    return tables.text_grid(sub[sub["input"] == "true"], rows, cols, render)


def _pairs_view(pairs: pd.DataFrame, split_type: str, datasets: list[tuple[str, int]]) -> pd.DataFrame:
    sub = pairs[pairs["split_type"] == split_type]
    rows = [
        (f"{tables.display(m)} − {tables.display(r)}", {"model": m, "reference": r})
        for m, r in dict.fromkeys(zip(sub["model"], sub["reference"]))
    ]
    cols = [(f"{d} ({n})", {"dataset": d}) for d, n in datasets]
    return tables.text_grid(sub, rows, cols, tables.contrast_cell)


def _lead_sentence(pairs: pd.DataFrame, split_type: str, datasets: list[tuple[str, int]]) -> str:
    sub = pairs[pairs["split_type"] == split_type]
    order = {d: k for k, (d, _) in enumerate(datasets)}
    sentences = []
    for model, reference in dict.fromkeys(zip(sub["model"], sub["reference"])):
        rows = sub[sub["model"] == model].sort_values("dataset", key=lambda s: s.map(order))
        ahead = [d for d, lead in zip(rows["dataset"], rows["lead"]) if lead == "ahead"]
        behind = [d for d, lead in zip(rows["dataset"], rows["lead"]) if lead == "behind"]
        name, ref = tables.display(model), tables.display(reference)
        if ahead:
            text = f"{name} leads {ref} (95% interval of the paired difference above 0) on {', '.join(ahead)}"
        else:
            text = f"{name} leads {ref} on no dataset (no 95% interval of the paired difference above 0)"
        if behind:
            text += f"; it trails on {', '.join(behind)}"
        sentences.append(text + ".")
    return " ".join(sentences)


def ladder_groups(df: pd.DataFrame, manifest: dict[str, Any]) -> list[list[str]]:
    """Datasets that may share a ladder: the same target (``target_kind`` and ``target_scale``
    of the manifest), and at least two distinct numbers of regions; FC and SC targets, or a
    synthetic brain beside a real one, are never put side by side as resolutions."""
    info = manifest.get("datasets", {})
    groups: dict[tuple[Any, Any], list[str]] = {}
    for dataset in dict.fromkeys(df.loc[df["input"] == "true", "dataset"]):
        entry = info.get(dataset, {})
        groups.setdefault((entry.get("target_kind"), entry.get("target_scale")), []).append(dataset)
    sizes = {d: info.get(d, {}).get("n_regions") for d in info}
    return [g for g in groups.values() if len({sizes.get(d) for d in g}) >= 2]


def resolution_section(ctx: ReportContext) -> list[Block]:
    """The ladder across the folder's datasets of one target (nothing without two resolutions)."""
    blocks: list[Block] = []
    grid = ctx.df[ctx.df["split_type"].isin(SPLIT_ORDER)]
    groups = ladder_groups(grid, ctx.manifest)
    for k, group in enumerate(groups):
        suffix = "" if len(groups) == 1 else f"_{k + 1}"
        blocks += _ladder_blocks(ctx, grid[grid["dataset"].isin(group)], suffix)
    return blocks


def _ladder_blocks(ctx: ReportContext, grid: pd.DataFrame, suffix: str) -> list[Block]:
    datasets = _datasets_by_size(grid, ctx.manifest)
    table = ladder_table(grid, ctx.manifest)
    pairs = ladder_pairs(grid, n_permutations=ctx.n_permutations, seed=ctx.seed)
    table.to_csv(ctx.tables_dir / f"resolution_ladder{suffix}.csv", index=False)
    pairs.to_csv(ctx.tables_dir / f"resolution_ladder_pairs{suffix}.csv", index=False)
    blocks: list[Block] = [
        Heading("Across resolutions (the paper's Tables 5–8)", 2),
        Paragraph(
            "Test Pearson r, mean ± SD over splits (n), by dataset ordered by its number of regions (in "
            "brackets); 'null' is the mean of the shown null family's runs, averaged per split. The "
            "second table pairs each SMT variant with the MLP that reads the same inputs, over the splits both "
            "were scored on: mean ± SD of the difference (n; splits where the SMT is ahead; 'ahead' or "
            "'behind' where the 95% t-interval excludes 0, 'level' where it holds 0, 'n/a' below 2 splits). "
            "A cell with fits flagged *not trained* "
            "says how many (they are in its mean)."
        ),
    ]
    for split_type in [s for s in SPLIT_ORDER if s in set(table["split_type"])]:
        blocks += [Heading(f"{split_type.capitalize()} splits", 3), Table(_ladder_view(table, split_type, datasets))]
        if not pairs[pairs["split_type"] == split_type].empty:
            blocks += [
                Table(_pairs_view(pairs, split_type, datasets)),
                Paragraph(_lead_sentence(pairs, split_type, datasets)),
            ]
    path = ctx.figures_dir / f"resolution_ladder{suffix}.png"
    try:
        figures.plot_resolution_ladder(table, path)
    except Exception as err:  # noqa: BLE001 — a figure must not sink the report
        blocks.append(Paragraph(f"**Figure not drawn**: the resolution ladder figure failed ({err})."))
    else:
        blocks.append(
            Figure(
                path,
                "test r against the number of regions",
                "Test Pearson r (true expression) against the number of regions; mean with its 95% t-interval "
                "over splits, one line per model, one panel per split type.",
            )
        )
    return blocks
