"""The headline of a dataset: what the experiment shows, and what its verdicts rule out.

The report opens each dataset with it (`spatiomol.reports.sections.DATASET_SECTIONS`):

- the best model per split type, with a 95% interval over its splits;
- for every model with null runs and every null family, one plain sentence: whether it
  beats the family's nulls (the rank test on shared folds, Holm-adjusted:
  `spatiomol.reports.verdict.true_vs_nulls`), the effect with its interval and z, which of
  `spatiomol.nulls.families.ANATOMY_PROPERTIES` the nulls keep (what the verdict rules
  out) and which they do not (what it leaves open), and what the family's calibration
  covered;
- each expression model's gap to the anatomy baseline (`spatiomol.reports.stats.versus_anatomy`),
  or a line saying the baseline was not run;
- a table of which properties each family keeps.

Writes ``tables/headline_<dataset>.csv`` (one row per verdict sentence, with its numbers)
and ``tables/headline_keeps_<dataset>.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatiomol.nulls.families import ANATOMY_PROPERTIES, FAMILIES, kept_and_lost
from spatiomol.reports import null_families, stats, tables, verdict
from spatiomol.reports.context import ReportContext, best_model, family_settings, slug, split_types
from spatiomol.reports.document import Block, Bullets, Heading, Paragraph, Table

__all__ = ["headline_section", "verdict_sentence"]


def _listing(items: list[str]) -> str:
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _calibration_words(method: str | None) -> str:
    if method is None or method not in FAMILIES:
        return "of unknown calibration"
    return FAMILIES[method].calibration


def verdict_sentence(model: str, split_type: str, label: str, method: str | None, row: pd.Series) -> str:
    """One plain sentence for one rank verdict (a row of `verdict.true_vs_nulls`)."""
    kept, lost = kept_and_lost(method) if method in FAMILIES else ([], list(ANATOMY_PROPERTIES))
    keeps = f"nulls that keep {_listing(kept)}" if kept else "nulls that keep none of the named properties"
    p_holm = row.get("p_holm", row.get("p"))
    if not np.isfinite(row.get("p", np.nan)):
        return f"`{model}` ({split_type} splits) has no verdict against `{label}` ({keeps}): no scored nulls."
    beats = bool(row.get("reject", 0.0) == 1.0)
    effect = f"effect {row['effect']:+.3f} r"
    if np.isfinite(row.get("effect_low", np.nan)):
        effect += f" (95% CI {row['effect_low']:+.3f} to {row['effect_high']:+.3f})"
    if np.isfinite(row.get("effect_z", np.nan)):
        effect += f", z = {row['effect_z']:.1f}"
    text = (
        f"`{model}` ({split_type} splits) {'**beats**' if beats else '**does not beat**'} `{label}`, {keeps}: "
        f"Holm p = {p_holm:.3g} (p = {row['p']:.3g}, K = {int(row['n_nulls'])} nulls), {effect}. "
    )
    text += f"Not ruled out by these nulls: {_listing(lost)}. " if lost else "They keep every property named here. "
    if method in FAMILIES:
        text += "Its family is calibrated." if FAMILIES[method].calibrated else "**Its family is not calibrated.**"
    if row.get("design") == verdict.LEGACY_DESIGN:
        text += " (Legacy design: one null per repeat; conservative, not exact.)"
    return text


def _best_lines(ctx: ReportContext, dataset: str, sub: pd.DataFrame) -> list[str]:
    lines = []
    for split_type in split_types(sub):
        model = best_model(ctx.summary, dataset, split_type)
        if model is None:
            continue
        s = ctx.summary[
            (ctx.summary["dataset"] == dataset)
            & (ctx.summary["split_type"] == split_type)
            & (ctx.summary["model"] == model)
            & (ctx.summary["input"] == "true")
            & (ctx.summary["metric"] == "pearson")
            & (ctx.summary["stratum"] == "all")
        ].iloc[0]
        low, high = verdict.t_interval(float(s["mean"]), float(s["sd"]), int(s["n_splits"]))
        interval = (
            f" (95% CI {low:.3f} to {high:.3f} over n = {int(s['n_splits'])} splits; overlapping CV splits, so "
            "indicative)"
            if np.isfinite(low)
            else ""
        )
        lines.append(f"{split_type} splits: **{tables.display(model)}**, test r = {s['mean']:.3f}{interval}.")
    return lines


def _anatomy_lines(ctx: ReportContext, sub: pd.DataFrame) -> list[str]:
    vab = stats.versus_anatomy(sub, n_permutations=ctx.n_permutations, seed=ctx.seed)
    if vab.empty:
        return [
            "The anatomy baseline (`anatomy`: coordinates, hemisphere, structure class, homologues; no expression) "
            "was not run, so how much of each model's accuracy anatomy alone gives is unknown: add `anatomy` "
            "to the models."
        ]
    lines = []
    for _, row in vab.iterrows():
        low, high = verdict.t_interval(float(row["mean_diff"]), float(row["sd_diff"]), int(row["n"]))
        interval = f" (95% CI {low:+.3f} to {high:+.3f})" if np.isfinite(low) else ""
        lines.append(
            f"`{tables.display(row['model'])}` ({row['split_type']} splits) vs the anatomy baseline: "
            f"Δr = {row['mean_diff']:+.3f}"
            f"{interval} over {int(row['n'])} shared splits, sign-flip p = {row['signflip_p']:.3g} (descriptive: "
            "overlapping splits)."
        )
    return lines


def _holm_floor_lines(ranked: pd.DataFrame, column: str) -> list[str]:
    """A warning per family whose K nulls cannot reach Holm p ≤ α over its m verdicts (m/(K+1) > α)."""
    lines = []
    for label, group in ranked.groupby(column, sort=False):
        m = int(group["p"].notna().sum())
        if not m or not group["n_nulls"].max():
            continue
        k = int(group["n_nulls"].max())
        floor = verdict.holm_floor(m, k)
        if floor > verdict.ALPHA:
            needed = verdict.nulls_for_holm(m)
            lines.append(
                f"**`{label}`: no verdict can reject.** With {m} verdicts and K = {k} nulls the smallest Holm p "
                f"is {m}/(K + 1) = {floor:.3g} > {verdict.ALPHA}; it needs K ≥ {needed} nulls (the default for "
                "closed-form models is 99)."
            )
    return lines


def _keeps_table(methods: dict[str, str | None]) -> pd.DataFrame:
    rows = []
    for label, method in methods.items():
        keeps = FAMILIES[method].keeps if method in FAMILIES else frozenset()
        rows.append({"family": label, **{p: ("yes" if p in keeps else "no") for p in ANATOMY_PROPERTIES}})
    return pd.DataFrame(rows)


def headline_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """The dataset's headline: best models, one sentence per null verdict, the gap to anatomy."""
    sub = ctx.df[ctx.df["dataset"] == dataset]
    rows = ctx.all_rows if ctx.all_rows is not None else ctx.df
    rows = rows[rows["dataset"] == dataset]
    name = slug(dataset)
    blocks: list[Block] = [Heading(f"Headline: {dataset}", 2)]
    best = _best_lines(ctx, dataset, sub)
    if best:
        blocks += [Paragraph("Best model (mean test Pearson r over the true input's splits):"), Bullets(tuple(best))]

    column = null_families.FAMILY_COLUMN
    ranked = verdict.true_vs_nulls(rows, family=column) if column in rows.columns else pd.DataFrame()
    settings = family_settings(ctx)
    if ranked.empty:
        blocks.append(
            Paragraph(
                "No null runs: nothing here says whether the models learned more than space or anatomy. "
                "Add `null` to the inputs."
            )
        )
    else:
        methods = {label: settings.get(label, {}).get("method", label) for label in dict.fromkeys(ranked[column])}
        sentences, records = [], []
        for _, row in ranked.iterrows():
            method = methods[row[column]]
            text = verdict_sentence(tables.display(row["model"]), row["split_type"], row[column], method, row)
            sentences.append(text)
            records.append({**row.to_dict(), "method": method, "sentence": text})
        pd.DataFrame(records).to_csv(ctx.tables_dir / f"headline_{name}.csv", index=False)
        floor_lines = _holm_floor_lines(ranked, column)
        floor_lines += [f"Calibration of `{label}`: {_calibration_words(m)}." for label, m in methods.items()]
        keeps = _keeps_table(methods)
        keeps.to_csv(ctx.tables_dir / f"headline_keeps_{name}.csv", index=False)
        blocks += [
            Paragraph(
                "What each verdict rules out (rank test on shared folds, Holm-adjusted over the models × split "
                "types of each family; a model beats a family when its Holm p ≤ "
                f"{verdict.ALPHA}). A verdict rules out only what its nulls keep:"
            ),
            Bullets(tuple(sentences)),
            *[Paragraph(line) for line in floor_lines],
            Paragraph("What each null family keeps of the true expression:"),
            Table(keeps, index=False),
        ]
    blocks += [Paragraph("Anatomy without expression:"), Bullets(tuple(_anatomy_lines(ctx, sub)))]
    return blocks
