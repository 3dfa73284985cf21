"""The table sections of a dataset: Tables 1–3 and the paired statistics (true vs null, vs best
linear, vs the anatomy baseline).

Each section writes its numeric CSV under ``tables/`` and returns the formatted table as
`document` blocks; the tables themselves are built by `spatiomol.reports.tables` and the
tests by `spatiomol.reports.stats`. Table 1 also counts, per model, the fits that did not
train (`not_trained_counts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatiomol.experiments.store import checked_runs
from spatiomol.reports import stats, tables
from spatiomol.reports.context import ReportContext, shown_family_note, slug
from spatiomol.reports.document import Block, Heading, Paragraph, Table

#: columns of the paired-statistics tables (`stats.true_vs_null`, `stats.versus_best_linear`,
#: `stats.versus_anatomy`)
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


def not_trained_counts(rows: pd.DataFrame, dataset: str) -> dict[str, tuple[int, int]]:
    """Model → (fits flagged *not trained*, fits checked) over ``dataset``'s runs (true and
    null inputs); models whose fits have no training check (closed-form) are left out."""
    runs = checked_runs(rows[rows["dataset"] == dataset])
    return {
        str(model): (int(group["not_trained"].sum()), len(group)) for model, group in runs.groupby("model", sort=False)
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
        blocks.append(
            Paragraph(
                f"null = the model trained on null expression{shown_family_note(ctx)}{others}; its mean ± SD is "
                "over every null run (each of the family's nulls on each split)."
            )
        )
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
    """True vs null, each model vs the best linear model and, when it was run, each expression
    model vs the anatomy baseline, paired over splits."""
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
                f"a = true, b = null{shown_family_note(ctx)} (on each split, the mean over the nulls scored on "
                "it); d_z = mean/SD of differences; "
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
    return blocks + versus_anatomy_blocks(ctx, sub, name)


def versus_anatomy_blocks(ctx: ReportContext, sub: pd.DataFrame, name: str) -> list[Block]:
    """Each expression model vs the anatomy baseline (nothing when the baseline was not run)."""
    vab = stats.versus_anatomy(sub, n_permutations=ctx.n_permutations, seed=ctx.seed)
    if vab.empty:
        return []
    vab.to_csv(ctx.tables_dir / f"stats_vs_anatomy_{name}.csv", index=False)
    view = vab[STAT_COLUMNS].copy()
    view["model"] = view["model"].map(tables.display)
    return [
        Heading("Each expression model vs the anatomy baseline (true expression, test Pearson r)", 3),
        Paragraph(
            f"a = model, b = {tables.display(stats.ANATOMY_MODEL)}, which sees coordinates, hemisphere, "
            "structure class and homologues but no expression: a positive difference means expression "
            "predicts more than anatomy does. Nulls that break anatomy (whole-brain `moran`) cannot answer that "
            "question; the `anatomical` null family and this baseline can."
        ),
        Table(view, index=False),
    ]
