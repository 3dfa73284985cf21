"""Inputs compared: one architecture read with different inputs (issue 27; Table-3 style).

Does expression add anything beyond the structural wiring, or beyond position? When a
dataset's runs hold two or more registry models of one architecture
(`spatiomol.models.registry.architecture`: the same estimator and the same fixed
hyperparameters apart from the input switches) that read different inputs
(`spatiomol.models.registry.inputs`: expression, coordinates, structural connectivity),
this section puts them side by side, per architecture:

- a table of test Pearson r per input set and split type (mean ± SD over splits, n), with
  the rank verdict of the shown null family for each row that has null runs (Holm-adjusted
  as in the null-families section), so an expression-bearing row says whether it beats
  nulls that keep space and anatomy;
- the contrasts that isolate one input (`input_contrasts`), paired over the splits both
  models were scored on: *adds M* (the model reading ``A + M`` against the one reading
  ``A``) and *alone* (two models reading one different input each). A lead is called one
  only where the 95% t-interval of the paired difference excludes 0, as in the ladder.

It writes ``tables/inputs_<dataset>.csv`` (one row per architecture, model and split type)
and ``tables/input_contrasts_<dataset>.csv``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.models import registry
from spatiomol.reports import stats, tables
from spatiomol.reports.context import ReportContext, slug, split_types
from spatiomol.reports.document import Block, Heading, Paragraph, Table
from spatiomol.reports.null_families import FAMILY_COLUMN
from spatiomol.reports.null_sections import family_verdicts

MODALITY_NAMES = registry.MODALITY_NAMES


@dataclass(frozen=True)
class Contrast:
    """``model`` − ``reference``, two models of one architecture; ``kind`` is ``"adds"``
    (``model`` reads ``reference``'s inputs plus ``modality``) or ``"alone"`` (each reads
    one input, ``modality`` being ``model``'s)."""

    model: str
    reference: str
    kind: str
    modality: str

    @property
    def label(self) -> str:
        """``"expression + SC − SC alone (adds expression)"``: the two input sets, and what is added."""
        name = f"{input_label(registry.inputs(self.model))} − {input_label(registry.inputs(self.reference))}"
        if self.kind == "adds":
            return f"{name} (adds {MODALITY_NAMES[self.modality]})"
        return name


def input_label(inputs: frozenset[str]) -> str:
    """``"expression alone"``, ``"expression + SC"``: the inputs in `registry.MODALITIES` order."""
    names = [MODALITY_NAMES[m] for m in registry.MODALITIES if m in inputs]
    return f"{names[0]} alone" if len(names) == 1 else " + ".join(names)


def _input_order(model: str) -> tuple[int, list[int]]:
    inputs = registry.inputs(model)
    return len(inputs), [registry.MODALITIES.index(m) for m in registry.MODALITIES if m in inputs]


def _run_settings(model: str, config: Mapping[str, Any] | None) -> str:
    """The experiment's settings of ``model`` beyond its registry spec: its ``model_params``
    and whether it was tuned (a contrast must not mix them with the input difference)."""
    if not config:
        return ""
    tuned = bool(config.get("tuning", True)) and model not in (config.get("untuned_models") or [])
    params = (config.get("model_params") or {}).get(model, {})
    return json.dumps({"tuned": tuned, "params": params}, sort_keys=True, default=str)


def architectures(models: Iterable[str], config: Mapping[str, Any] | None = None) -> list[list[str]]:
    """Groups of ``models`` that are one architecture read with different inputs.

    Parameters
    ----------
    models : iterable of str
        Registry names.
    config : mapping, optional
        The experiment's config (manifest ``config``): models whose ``model_params`` or
        tuning differ are never grouped, so that a contrast changes the inputs only.

    Returns
    -------
    list of list of str
        Groups of two or more input sets (`registry.architecture`, same run settings), one
        model per input set (the first in registry order), each ordered by number of inputs,
        then `registry.MODALITIES` order.
    """
    groups: dict[tuple, dict[frozenset[str], str]] = {}
    for model in tables.model_order(models):
        key = (registry.architecture(model), _run_settings(model, config))
        groups.setdefault(key, {}).setdefault(registry.inputs(model), model)
    return [sorted(g.values(), key=_input_order) for g in groups.values() if len(g) >= 2]


def input_contrasts(group: list[str]) -> list[Contrast]:
    """The contrasts of one architecture's models that isolate one input: every pair whose
    input sets differ by one added input (*adds*), and every pair of single-input models
    (*alone*), the richer or the earlier-listed model first."""
    out = []
    for a, b in combinations(group, 2):
        ia, ib = registry.inputs(a), registry.inputs(b)
        if ia < ib or ib < ia:
            model, reference = (b, a) if ia < ib else (a, b)
            added = registry.inputs(model) - registry.inputs(reference)
            if len(added) == 1 and registry.inputs(reference):
                out.append(Contrast(model, reference, "adds", next(iter(added))))
        elif len(ia) == len(ib) == 1:
            out.append(Contrast(a, b, "alone", next(iter(ia))))
    return sorted(out, key=lambda c: (c.kind != "adds", registry.MODALITIES.index(c.modality)))


def input_table(df: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Test Pearson r of one architecture's models on the true input, per split type.

    Parameters
    ----------
    df : DataFrame
        Results-store rows of one dataset.
    group : list of str
        One of `architectures`.

    Returns
    -------
    DataFrame with ``split_type, model, inputs, mean, sd, n``: over the model's ``n``
    splits with a finite r (``sd`` NaN below 2).
    """
    scores = stats.split_scores(df)
    true = scores[(scores["input"] == "true") & scores["model"].isin(group)]
    rows = []
    for (split_type, model), g in true.groupby(["split_type", "model"], sort=False):
        values = g["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        n = values.size
        rows.append(
            {
                "split_type": split_type,
                "model": model,
                "inputs": input_label(registry.inputs(model)),
                "mean": float(values.mean()) if n else float("nan"),
                "sd": float(values.std(ddof=1)) if n > 1 else float("nan"),
                "n": n,
            }
        )
    return pd.DataFrame(rows, columns=["split_type", "model", "inputs", "mean", "sd", "n"])


def contrast_table(df: pd.DataFrame, group: list[str], n_permutations: int = 10000, seed: int = 0) -> pd.DataFrame:
    """`input_contrasts` of one architecture, paired over the true input's shared splits.

    Parameters
    ----------
    df : DataFrame
        Results-store rows of one dataset.
    group : list of str
        One of `architectures`.
    n_permutations, seed : int
        Of the sign-flip test.

    Returns
    -------
    DataFrame with ``split_type, model, reference, kind, modality, contrast`` and
    `spatiomol.reports.stats.CONTRAST_COLUMNS` (differences in Pearson r), one row per
    contrast and split type where both models share a split.
    """
    scores = stats.split_scores(df)
    true = scores[(scores["input"] == "true") & scores["model"].isin(group)]
    contrasts = input_contrasts(group)
    rows = []
    for split_type, g in true.groupby("split_type", sort=False):
        wide = g.pivot_table(index=["repeat", "fold"], columns="model", values="value", aggfunc="first")
        for c in contrasts:
            if c.model not in wide.columns or c.reference not in wide.columns:
                continue
            result = stats.paired_contrast(wide, c.model, c.reference, n_permutations=n_permutations, seed=seed)
            if result is not None:
                rows.append(
                    {
                        "split_type": split_type,
                        "model": c.model,
                        "reference": c.reference,
                        "kind": c.kind,
                        "modality": c.modality,
                        "contrast": c.label,
                        **result,
                    }
                )
    keys = ["split_type", "model", "reference", "kind", "modality", "contrast"]
    return pd.DataFrame(rows, columns=[*keys, *stats.CONTRAST_COLUMNS])


Verdicts = dict[tuple[str, str], tuple[bool, float]]


def _verdicts(ctx: ReportContext, dataset: str) -> Verdicts:
    """(split type, model) → (beats the shown family's nulls, Holm p) for the rows with null runs."""
    rows = ctx.rows[ctx.rows["dataset"] == dataset]
    if ctx.family is None or not (rows["input"] == "null").any():
        return {}
    comparisons = family_verdicts(ctx, rows)
    if comparisons.empty or "rank_reject" not in comparisons:
        return {}
    shown = comparisons[comparisons[FAMILY_COLUMN] == ctx.family]
    return {
        (r["split_type"], r["model"]): (bool(r["rank_reject"]), float(r["rank_p_holm"]))
        for r in shown.to_dict("records")
        if np.isfinite(r["rank_p_holm"])
    }


def _table_view(
    table: pd.DataFrame, group: list[str], order: list[str], verdicts: Verdicts, family: str | None
) -> pd.DataFrame:
    def render(h) -> str:
        text = f"{tables.format_cell(h['mean'], h['sd'], '.3f')} ({int(h['n'])})"
        if (h["split_type"], h["model"]) in verdicts:
            beats, p = verdicts[(h["split_type"], h["model"])]
            text += f"; {'beats' if beats else 'does not beat'} `{family}` nulls (Holm p {p:.3g})"
        return text

    rows = [(f"{input_label(registry.inputs(m))} ({tables.display(m)})", {"model": m}) for m in group]
    return tables.text_grid(table, rows, [(k, {"split_type": k}) for k in order], render)


def _contrast_view(contrasts: pd.DataFrame, order: list[str], labels: list[str]) -> pd.DataFrame:
    rows = [(label, {"contrast": label}) for label in labels if label in set(contrasts["contrast"])]
    return tables.text_grid(contrasts, rows, [(k, {"split_type": k}) for k in order], tables.contrast_cell)


def inputs_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Per architecture read with two or more input sets: test r per input set and the paired
    contrasts that isolate one input (nothing when no architecture has two)."""
    sub = ctx.df[(ctx.df["dataset"] == dataset) & (ctx.df["input"] == "true")]
    groups = architectures(sub["model"].unique(), ctx.config)
    if not groups:
        return []
    order = split_types(sub)
    verdicts = _verdicts(ctx, dataset)
    blocks: list[Block] = [
        Heading("Inputs compared (test Pearson r)", 3),
        Paragraph(
            "One architecture, with the same settings, read with different inputs (expression, coordinates, "
            "structural connectivity features). Cells: mean ± SD (n splits) of the true input"
            + (
                f"; where null runs exist, the rank verdict against the `{ctx.family}` nulls, Holm-adjusted over "
                "the family's models × split types as in the null-families section"
                if ctx.family
                else ""
            )
            + ". Contrasts: the first model minus the second over the splits both were scored on (so not always "
            "the difference of the cells above), mean ± SD (n; splits where the first is ahead; 'ahead'/'behind' "
            "where the 95% t-interval excludes 0, 'level' where it holds 0, 'n/a' with one split). A held-out "
            "split is one brain system, so its contrasts weigh systems of different sizes alike. Splits of "
            "repeated CV overlap, so the intervals are indicative. A lead of a row that reads expression says "
            "nothing about whether expression beyond spatial structure carries it: only a null verdict does."
        ),
    ]
    table_frames, contrast_frames = [], []
    for group in groups:
        table = input_table(sub, group)
        contrasts = contrast_table(sub, group, n_permutations=ctx.n_permutations, seed=ctx.seed)
        name = tables.display(group[0])
        table_frames.append(table.assign(architecture=name))
        contrast_frames.append(contrasts.assign(architecture=name))
        blocks += [Paragraph(f"**{name}**"), Table(_table_view(table, group, order, verdicts, ctx.family))]
        if not contrasts.empty:
            blocks.append(Table(_contrast_view(contrasts, order, [c.label for c in input_contrasts(group)])))
    file = slug(dataset)
    pd.concat(table_frames, ignore_index=True).to_csv(ctx.tables_dir / f"inputs_{file}.csv", index=False)
    pd.concat(contrast_frames, ignore_index=True).to_csv(ctx.tables_dir / f"input_contrasts_{file}.csv", index=False)
    return blocks
