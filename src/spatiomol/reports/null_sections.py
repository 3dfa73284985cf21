"""The null sections of a dataset: how far its nulls move expression, and the true input against each null family.

`nulls_section` says, per null family, how many regions the kept nulls leave with their
own expression (`nulls_diagnostic`); `null_families_section` compares the true input with
each family, by the paired sign-flip test and by the rank test (`family_verdicts`), and
writes the per-family table, the consensus lines and one figure per split type
(`spatiomol.reports.null_families`, `spatiomol.reports.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from spatiomol.nulls import CALIBRATED_METHODS, FAMILIES
from spatiomol.reports import figures, null_families, tables, verdict
from spatiomol.reports.context import ReportContext, family_settings, nulls_files, slug, split_types
from spatiomol.reports.document import Block, Bullets, Figure, Heading, Paragraph, Table

#: the rank test's columns (`verdict.true_vs_nulls`) in the null-families table, as renamed there
RANK_COLUMNS = {
    "design": "rank_design",
    "n_splits": "rank_splits",
    "n_nulls": "rank_nulls",
    "n_nulls_dropped": "rank_nulls_dropped",
    "effect": "rank_effect",
    "effect_low": "rank_effect_low",
    "effect_high": "rank_effect_high",
    "effect_z": "rank_effect_z",
    "p": "rank_p",
    "p_holm": "rank_p_holm",
    "p_bh": "rank_p_bh",
    "min_p": "rank_min_p",
    "reject": "rank_reject",
}
#: columns of the null-families table as the report shows it (`null_families.family_comparisons`,
#: plus the rank test; ``rank_effect (95% CI)`` is formatted from the effect and its interval)
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
    "paired_beats",
    "rank_nulls",
    "rank_effect (95% CI)",
    "rank_effect_z",
    "rank_p",
    "rank_p_holm",
    "rank_design",
]


# ---------------------------------------------------------------- diagnostics
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


def _is_naive(method) -> bool:
    """Whether ``method`` is the naive null family (``NullFamily.naive``; unknown names are not)."""
    spec = FAMILIES.get(method) if isinstance(method, str) else None
    return spec is not None and spec.naive


def nulls_diagnostic(nullset, label: str) -> str:
    """One line: how much of the brain a family's kept nulls leave with its own expression."""
    own = own_expression_fraction(nullset)
    meta = nullset.metadata
    matched = meta.get("cge_match", not _is_naive(meta.get("method")))  # format 1 had no cge_match
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


# ---------------------------------------------------------- null families
def smallest_signflip_p(n: int) -> float:
    """Smallest two-sided exact sign-flip p with ``n`` paired splits: 2 of the 2ⁿ sign patterns, 2/2ⁿ."""
    return 2.0 / 2.0**n


def calibration_text(ctx: ReportContext, families: Sequence[str]) -> str:
    """How the rank verdict of each of ``families`` fared in the calibration (``NullFamily.calibration``)."""
    settings = family_settings(ctx)
    lines = []
    for label in families:
        method = settings.get(label, {}).get("method")
        words = FAMILIES[method].calibration if method in FAMILIES else "of unknown calibration"
        lines.append(f"`{label}`: {words}")
    calibrated = [f for f in families if settings.get(f, {}).get("method") in CALIBRATED_METHODS]
    text = (
        "What the calibration covered (docs/calibration.md: simulated brains whose expression has no link to "
        "FC, carrying isotropic space only, anatomy in doses, or a model fitted to real expression; random "
        "and spatial splits; hcp-s100 and hcp-s400; the paired test failed with every family): "
        + "; ".join(lines)
        + ". "
    )
    if not calibrated:
        text += (
            "**None of these families is calibrated where expression carries anatomy:** a model that beats "
            "them may have learned where a region sits in that anatomy rather than a gene-to-connectivity rule."
        )
    return text.rstrip()


def family_verdicts(ctx: ReportContext, rows: pd.DataFrame) -> pd.DataFrame:
    """`null_families.family_comparisons` of ``rows`` plus the rank test's columns (`RANK_COLUMNS`).

    The rank test (`spatiomol.reports.verdict.true_vs_nulls`, one verdict per family)
    compares the true input's mean score with each null's mean score over the same splits;
    ``rank_p_holm`` / ``rank_p_bh`` are adjusted over the rows of ``rows``'s dataset and one
    family, and ``rank_reject`` is ``rank_p_holm ≤ α``.
    """
    comparisons = null_families.family_comparisons(
        rows, families=ctx.families, n_permutations=ctx.n_permutations, seed=ctx.seed
    )
    if comparisons.empty:
        return comparisons
    keys = [*null_families.COMPARISON_KEYS, null_families.FAMILY_COLUMN]
    rank = verdict.true_vs_nulls(rows, family=null_families.FAMILY_COLUMN)
    if rank.empty:
        empty = {name: np.nan for name in RANK_COLUMNS.values()}
        return comparisons.assign(**{**empty, "rank_nulls": 0, "rank_design": ""})
    rank = rank[[*keys, *RANK_COLUMNS]].rename(columns=RANK_COLUMNS)
    return comparisons.merge(rank, on=keys, how="left")


def effect_interval_text(effect: float, low: float, high: float) -> str:
    """``"0.123 [0.101, 0.145]"``; ``"–"`` without an effect, no interval with one null."""
    if effect is None or not np.isfinite(effect):
        return "–"
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{effect:.3g}"
    return f"{effect:.3g} [{low:.3g}, {high:.3g}]"


def paired_test_text(ctx: ReportContext, comparisons: pd.DataFrame, families: Sequence[str]) -> str:
    """What the paired-test table shows: the design, the ``beats`` rule and the smallest sign-flip p."""
    splits = sorted({int(n) for n in comparisons["n"] if n > 0})
    design = f"{ctx.config.get('repeats', '?')} repeat(s) × {ctx.config.get('folds', '?')} folds"
    n_text = f"n = {splits[0]}" if len(splits) == 1 else f"n = {splits[0]}–{splits[-1]}"
    floor = smallest_signflip_p(max(splits)) if splits else float("nan")
    text = (
        f"Each model trained on true expression against the same model trained on each null family's "
        f"expression ({', '.join(f'`{f}`' for f in families)}), paired over the splits: {n_text} splits per "
        f"comparison ({design}). a = true, b = the mean of the family's nulls on the split; `paired_beats`: the true "
        f"input scores higher on average and the Benjamini–Hochberg-adjusted sign-flip p (over this table) "
        f"is ≤ {null_families.ALPHA}. With n splits the smallest exact two-sided sign-flip p is 2/2ⁿ: "
        f"{floor:.3g} here; with 4 splits (e.g. the demo's 1 repeat × 4 folds) it is "
        f"{smallest_signflip_p(4):.3g}, so a run of that size cannot reject whatever the gap. "
        "Splits of repeated CV overlap, so these p-values are descriptive: the paired test's false-positive "
        "rate was 0.23 even with the ideal null (docs/calibration.md). The rank test is the verdict."
    )
    if splits and floor > null_families.ALPHA:
        text += f" **With {max(splits)} splits no family can be beaten at α = {null_families.ALPHA}.**"
    return text


def rank_test_text(ctx: ReportContext, comparisons: pd.DataFrame, families: Sequence[str]) -> str:
    """What the rank test does, the K nulls it had here, its multiplicity, the design, which families are calibrated."""
    nulls_k = sorted({int(k) for k in comparisons["rank_nulls"].dropna() if k > 0})
    k_text = f"here K = {', '.join(map(str, nulls_k))} (smallest p {1 / (1 + max(nulls_k)):.3g}); " if nulls_k else ""
    text = (
        "Rank test (`spatiomol.reports.verdict`): the true input's mean score against each of the family's "
        "K nulls' mean scores over the same splits, p = (1 + #nulls scoring as well)/(1 + K), `rank_nulls` = K; "
        f"{k_text}it can reject at {verdict.ALPHA} only with K ≥ {verdict.min_nulls()} nulls. Every null is "
        "scored on every split of the true runs (shared folds; K = `nulls.top` for closed-form models, "
        "min(`nulls.top`, `nulls.neural_top`) for neural ones), so the K + 1 scores are exchangeable when the "
        "true expression carries nothing its nulls do not, and the test is exact. `rank_effect` = true − mean "
        "null score (positive: better than the nulls), with a 95% t-interval for the Monte Carlo error of the "
        "mean null on these splits (it does not cover a new draw of the splits); `rank_effect_z` = effect / SD "
        "of the null scores. "
    )
    sizes = comparisons.groupby(null_families.FAMILY_COLUMN)["rank_p"].apply(lambda p: int(p.notna().sum()))
    m = int(sizes.max()) if len(sizes) else 0
    if m:
        text += (
            f"`rank_p_holm`: Holm-adjusted over the {m} model × split-type rows of each family (the verdict, "
            f"`rank_reject`, is `rank_p_holm` ≤ {verdict.ALPHA}). "
        )
        if nulls_k:
            floor = verdict.holm_floor(m, max(nulls_k))
            text += f"With m rows the smallest Holm p is m/(K + 1): {floor:.3g} here. "
            if floor > verdict.ALPHA:
                text += (
                    f"**With {m} rows and K = {max(nulls_k)} nulls no verdict can reject at α = {verdict.ALPHA} "
                    f"after Holm's adjustment** (it needs K ≥ {verdict.nulls_for_holm(m)}). "
                )
    designs = set(comparisons["rank_design"].dropna()) - {""}
    if verdict.LEGACY_DESIGN in designs:
        text += (
            "**Legacy design:** these results come from the grid's earlier design, one null per repeat (null k "
            "scored on the folds of repeat k only), so their rank verdicts (`rank_design` "
            f'"{verdict.LEGACY_DESIGN}") are computed the old way: split noise does not cancel and the test is '
            "conservative, not exact. Re-run the experiment into a new folder to score every null on shared folds. "
        )
    return text + calibration_text(ctx, families)


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

    families = list(dict.fromkeys(comparisons[null_families.FAMILY_COLUMN]))
    text = paired_test_text(ctx, comparisons, families)
    rank_text = rank_test_text(ctx, comparisons, families)
    view = comparisons.assign(
        **{
            "rank_effect (95% CI)": [
                effect_interval_text(e, lo, hi)
                for e, lo, hi in zip(
                    comparisons["rank_effect"], comparisons["rank_effect_low"], comparisons["rank_effect_high"]
                )
            ]
        }
    ).reindex(columns=FAMILY_COLUMNS)
    view["model"] = view["model"].map(tables.display)
    view["paired_beats"] = view["paired_beats"].map({True: "yes", False: "no"})
    legacy = {
        (r["split_type"], r["model"])
        for r in comparisons[comparisons["rank_design"] == verdict.LEGACY_DESIGN].to_dict("records")
    }
    lines = []
    for record in agreed.to_dict("records"):
        flag = (
            " — rank verdict of the legacy one-null-per-repeat design (conservative, not exact)"
            if (record["split_type"], record["model"]) in legacy
            else ""
        )
        lines.append(
            f"{record['split_type']} splits, {tables.display(record['model'])}: {record['rank_line']} "
            f"(paired test: {record['line']}){flag}"
        )
    preserved = what_families_preserve(ctx, families)
    preserved.to_csv(ctx.tables_dir / f"null_families_preserve_{name}.csv", index=False)
    blocks: list[Block] = [
        Heading("True input vs each null family (test Pearson r)", 3),
        Paragraph(
            "What each null family keeps of the true expression (`spatiomol.nulls.FAMILIES`): a model that "
            "beats a family's nulls has learned more than what that family keeps."
        ),
        Table(preserved, index=False),
        Paragraph(text),
        Table(view, index=False),
        Paragraph(rank_text),
        Paragraph(
            "Consensus per model (rank verdict after Holm's adjustment, calibrated against isotropic Euclidean "
            "proximity only; in brackets the descriptive paired test):"
        ),
        Bullets(tuple(lines)),
    ]
    return blocks + null_families_figures(ctx, rows, dataset)


def what_families_preserve(ctx: ReportContext, families: Sequence[str]) -> pd.DataFrame:
    """One row per null family of the report: its method, what it keeps of the true
    expression and what its rank verdict was calibrated against (`nulls.FAMILIES`)."""
    settings = family_settings(ctx)
    rows = []
    for label in families:
        method = settings.get(label, {}).get("method")
        spec = FAMILIES.get(method)
        rows.append(
            {
                "null_family": label,
                "method": spec.description if spec else "unknown",
                "keeps": "; ".join(spec.preserves) if spec else "unknown",
                "calibration of its rank verdict": spec.calibration if spec else "unknown",
            }
        )
    return pd.DataFrame(rows)


def null_families_figures(ctx: ReportContext, rows: pd.DataFrame, dataset: str) -> list[Block]:
    """Per split type with null runs: ``figures/null_families_<dataset>_<split>.png``
    (`null_families.draw_null_families`) of ``rows`` (the dataset's rows of every family)."""
    name = slug(dataset)
    blocks: list[Block] = []
    for split_type in split_types(rows):
        if not ((rows["split_type"] == split_type) & (rows["input"] == "null")).any():
            continue
        fig = null_families.draw_null_families(rows, dataset, split_type, families=ctx.families)
        path = figures.save_figure(fig, ctx.figures_dir / f"null_families_{name}_{split_type}.png")
        caption = (
            f"{dataset}, {split_type} splits: test Pearson r of each null family's runs (one point per null "
            "and split, a box per family) against the mean score on true expression (line), one panel per model"
        )
        blocks.append(Figure(path=path, alt=caption, caption=caption))
    return blocks
