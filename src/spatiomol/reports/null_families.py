"""True input against each null family, side by side: paired statistics, a consensus line, a figure.

An experiment may run several null families at once (config ``nulls`` a list, see
``docs/experiments.md``); each null run's rows carry its family's label in the
``null_family`` column (`spatiomol.experiments.config.null_family_label`, e.g. ``"cge"``,
``"moran"``; ``""`` on true and permuted rows). For each dataset × split type × model:

- `family_comparisons`: the true-input score against each family's null score, paired over
  the splits (repeat, fold) with `spatiomol.reports.stats.paired_test`, Benjamini–Hochberg
  adjusted over the rows of the table, and whether the model *beats* that family (better
  mean and adjusted p ≤ α). A split's null score is the mean over the family's nulls
  scored on it (every null, on shared folds; the one null of its repeat in a folder of
  the earlier one-null-per-repeat grid);
- `consensus`: one line per model, the families it beats and those it does not
  (``"beats cge, moran; not variogram"``);
- `draw_null_families` / `plot_null_families`: the null scores of each family (points and
  a box per family) against the mean true score (a line), one panel per model.

`family_rows` keeps one family's null rows (and every other row), so tables built for one
null per cell (Tables 1–3, `spatiomol.reports.stats.true_vs_null`) can show a chosen family.
`manifest_families` reads a results folder's families (label → settings, config order)
from its manifest, and `describe_family` says in words what a family's settings do.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.experiments.config import null_family_label, resolved_nulls
from spatiomol.nulls import FAMILIES, SPIN_METHODS
from spatiomol.reports import figures
from spatiomol.reports.figures import plt
from spatiomol.reports.stats import paired_test
from spatiomol.reports.tables import LOWER_IS_BETTER, display, model_order
from spatiomol.reports.verdict import adjust_p

#: the column of a tidy results table that names a null run's family
FAMILY_COLUMN = "null_family"
#: columns that identify one comparison (with `FAMILY_COLUMN`)
COMPARISON_KEYS = ("dataset", "split_type", "model")
#: default level of the ``paired_beats`` decision (descriptive: not calibrated)
ALPHA = 0.05
#: the p-value column the ``paired_beats`` decision uses by default
P_COLUMN = "signflip_p_bh"

__all__ = [
    "ALPHA",
    "COMPARISON_KEYS",
    "FAMILY_COLUMN",
    "P_COLUMN",
    "consensus",
    "consensus_line",
    "describe_family",
    "draw_null_families",
    "families_in",
    "family_comparisons",
    "family_rows",
    "manifest_families",
    "plot_null_families",
]

#: what each null method does, in words (`describe_family`; ``NullFamily.description`` of
#: `spatiomol.nulls.FAMILIES`); a method not listed is named as is
METHOD_WORDS = {name: spec.description for name, spec in FAMILIES.items()}


def _check_columns(df: pd.DataFrame, what: str) -> None:
    needed = {*COMPARISON_KEYS, "input", FAMILY_COLUMN, "repeat", "fold", "metric", "stratum", "value"}
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(
            f"{what}: results table lacks columns {missing}; expected the tidy rows of "
            "spatiomol.experiments.store.ResultsStore.load (which has 'null_family')"
        )


def manifest_families(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The null families of a results folder: label → settings, in the configuration's order.

    Read from the manifest's ``null_families`` (written by
    `spatiomol.experiments.runner.run_experiment`); a manifest from before it had that
    field falls back to the ``nulls`` of its latest grid configuration (``grid_config``,
    else ``config``), one mapping or a list, labelled by
    `spatiomol.experiments.config.null_family_label`. Empty when neither names nulls.
    """
    families = manifest.get("null_families")
    if isinstance(families, dict) and families:
        return {str(label): dict(settings) for label, settings in families.items()}
    config = manifest.get("grid_config") or manifest.get("config") or {}
    nulls = config.get("nulls")
    entries = nulls if isinstance(nulls, list) else [nulls] if isinstance(nulls, dict) else []
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            settings = resolved_nulls(entry)
            out[null_family_label(settings)] = settings
        except (KeyError, TypeError, ValueError):  # a method this version no longer knows
            continue
    return out


def describe_family(label: str, settings: dict[str, Any] | None) -> str:
    """One line on a null family: ``"`cge`: spins (Váša assignment); top 10 of 10000 draws, ..."``."""
    if not settings:
        return f"`{label}`"
    method = str(settings.get("method", "?"))
    top, n = settings.get("top", "?"), settings.get("n", "?")
    parts = [f"`{label}`: {METHOD_WORDS.get(method, method)}"]
    if settings.get("cge_match"):
        floor = settings.get("min_moved")
        rule = f", each moving ≥ {floor:.0%} of regions" if floor else " (Algorithm 1 verbatim, no floor)"
        parts.append(f"top {top} of {n} draws by CGE match{rule}")
    else:
        parts.append(f"first {top} draws (no CGE-matched selection)")
    if method in SPIN_METHODS and settings.get("subcortex"):
        parts.append(f"non-cortical regions: {settings['subcortex']}")
    parts.append(f"seed {settings.get('seed', '?')}")
    return "; ".join(parts)


def families_in(df: pd.DataFrame, order: Sequence[str] | None = None) -> list[str]:
    """Labels of the null families of ``df``'s null rows.

    Parameters
    ----------
    df : DataFrame
        Tidy results with a ``null_family`` column.
    order : sequence of str, optional
        Preferred order (e.g. the keys of the manifest's ``null_families``, the config's
        order); families of ``df`` not in it follow in order of appearance. Families of
        ``order`` absent from ``df`` are left out.
    """
    present = list(dict.fromkeys(df.loc[df["input"] == "null", FAMILY_COLUMN].astype(str)))
    first = [f for f in (order or []) if f in present]
    return first + [f for f in present if f not in first]


def family_rows(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Every true and permuted row of ``df`` plus the null rows of one ``family``.

    Raises
    ------
    ValueError
        When ``df`` has null rows but none of ``family`` (naming the families it has).
    """
    _check_columns(df, "family_rows")
    null = df["input"] == "null"
    keep = ~null | (df[FAMILY_COLUMN] == family)
    if null.any() and not (null & keep).any():
        raise ValueError(f"family_rows: no null rows of family {family!r}; the table has {families_in(df)}")
    return df[keep].reset_index(drop=True)


def _paired_frame(df: pd.DataFrame, metric: str, stratum: str, *, per_split: bool = False) -> pd.DataFrame:
    """Values of ``metric``/``stratum`` with a ``column`` naming "true" or the null family.

    One run per (split, null) cell: with a ``null_index`` column, the nulls of a family
    scored on one split (shared folds) are different cells. ``per_split``: one value per
    split and column, a family's null score being the mean over its nulls on that split.
    """
    sel = df[(df["metric"] == metric) & (df["stratum"] == stratum) & df["input"].isin(["true", "null"])]
    sel = sel.assign(column=np.where(sel["input"] == "true", "true", sel[FAMILY_COLUMN].astype(str)))
    cell = [*COMPARISON_KEYS, "column", "repeat", "fold", *(["null_index"] if "null_index" in sel else [])]
    repeated = sel.groupby(cell, sort=False).size()
    repeated = repeated[repeated > 1]
    if not repeated.empty:
        where = dict(zip(cell, repeated.index[0]))
        raise ValueError(
            f"null family comparison: {len(repeated)} cell(s) hold more than one run, e.g. {where}; "
            f"expected one run per ({', '.join(c if c != 'column' else 'input/null family' for c in cell)})"
        )
    if per_split:
        split_cell = [*COMPARISON_KEYS, "column", "repeat", "fold"]
        sel = sel.groupby(split_cell, sort=False, as_index=False)["value"].mean()
    return sel


def family_comparisons(
    df: pd.DataFrame,
    metric: str = "pearson",
    stratum: str = "all",
    *,
    families: Sequence[str] | None = None,
    alpha: float = ALPHA,
    p_column: str = P_COLUMN,
    n_permutations: int = 10000,
    seed: int = 0,
) -> pd.DataFrame:
    """True input vs each null family, paired over splits, per dataset × split type × model.

    Parameters
    ----------
    df : DataFrame
        Tidy results (`spatiomol.experiments.store.ResultsStore.load`, restricted to the
        current runs): columns ``dataset, split_type, model, input, null_family, repeat,
        fold, metric, stratum, value``.
    metric, stratum : str
        Which value to compare (default: global Pearson r). For errors
        (`spatiomol.reports.tables.LOWER_IS_BETTER`) lower is better.
    families : sequence of str, optional
        Order of the families (see `families_in`); default order of appearance.
    alpha : float
        Level of the ``beats`` decision.
    p_column : str
        The p-value column ``beats`` uses: ``"signflip_p_bh"`` (default), ``"signflip_p"``,
        ``"wilcoxon_p"`` or ``"wilcoxon_p_bh"``.
    n_permutations, seed : int
        Of the sign-flip test (`spatiomol.reports.stats.paired_test`).

    Returns
    -------
    DataFrame
        One row per (dataset, split_type, model, null_family) with true and null runs on
        common splits: those keys, ``metric``, ``stratum``, the `paired_test` columns
        (``a`` = true input, ``b`` = the family's null input, the mean over the family's
        nulls scored on the split; ``n`` splits, ``mean_a``,
        ``mean_b``, ``mean_diff``, ``sd_diff``, ``effect_dz``, ``rank_biserial``,
        ``wilcoxon_stat``, ``wilcoxon_p``, ``signflip_p``), ``wilcoxon_p_bh`` and
        ``signflip_p_bh`` (Benjamini–Hochberg over the rows of this table), and ``paired_beats``
        (the true input scores better on average and ``p_column`` ≤ ``alpha``).
        Splits where either score is missing are left out of the pair.
    """
    if p_column not in ("signflip_p", "signflip_p_bh", "wilcoxon_p", "wilcoxon_p_bh"):
        raise ValueError(f"family_comparisons: p_column must be a sign-flip or Wilcoxon p column, got {p_column!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"family_comparisons: alpha must be in (0, 1), got {alpha!r}")
    _check_columns(df, "family_comparisons")
    values = _paired_frame(df, metric, stratum, per_split=True)
    order = families_in(df, families)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rows = []
    for key, group in values.groupby(list(COMPARISON_KEYS), sort=False):
        wide = group.pivot(index=["repeat", "fold"], columns="column", values="value").sort_index()
        if "true" not in wide:
            continue
        for family in order:
            if family not in wide:
                continue
            pair = wide[["true", family]].dropna()
            result = paired_test(pair["true"].to_numpy(), pair[family].to_numpy(), n_permutations, seed)
            rows.append(
                {
                    **dict(zip(COMPARISON_KEYS, key)),
                    FAMILY_COLUMN: family,
                    "metric": metric,
                    "stratum": stratum,
                    **result,
                }
            )
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)
    for column in ("wilcoxon_p", "signflip_p"):
        out[f"{column}_bh"] = adjust_p(out[column].to_numpy(dtype=np.float64), "bh")
    out["paired_beats"] = (sign * out["mean_diff"] > 0) & (out[p_column] <= alpha)
    return out


def consensus_line(beaten: Sequence[str], not_beaten: Sequence[str], no_data: Sequence[str] = ()) -> str:
    """``"beats cge, moran; not variogram"`` (``"beats none; ..."`` when it beats no family)."""
    parts = ["beats " + (", ".join(beaten) if beaten else "none")]
    if not_beaten:
        parts.append("not " + ", ".join(not_beaten))
    if no_data:
        parts.append("no data for " + ", ".join(no_data))
    return "; ".join(parts)


def consensus(
    comparisons: pd.DataFrame, *, beats: str = "paired_beats", families: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per dataset × split type × model: the null families the model beats and those it does not.

    Parameters
    ----------
    comparisons : DataFrame
        One row per (dataset, split_type, model, null_family) with a boolean-like
        ``beats`` column: `family_comparisons`, or any per-family verdict (e.g.
        `spatiomol.reports.verdict.true_vs_nulls(df, family="null_family")` with
        ``beats = reject == 1``). A row whose ``beats`` is NaN, or whose ``n`` is 0, counts
        as "no data".
    beats : str
        The decision column.
    families : sequence of str, optional
        Order of the families in the lists; default order of appearance.

    Returns
    -------
    DataFrame
        Columns ``dataset, split_type, model``, ``beaten``, ``not_beaten`` and ``no_data``
        (lists of family labels) and ``line`` (`consensus_line`).
    """
    if comparisons.empty:
        return pd.DataFrame(columns=[*COMPARISON_KEYS, "beaten", "not_beaten", "no_data", "line"])
    missing = sorted({*COMPARISON_KEYS, FAMILY_COLUMN, beats} - set(comparisons.columns))
    if missing:
        raise ValueError(f"consensus: comparisons table lacks columns {missing}")
    present = list(dict.fromkeys(comparisons[FAMILY_COLUMN].astype(str)))
    ordered = dict.fromkeys([*(f for f in (families or []) if f in present), *present])
    rank = {f: k for k, f in enumerate(ordered)}
    rows = []
    for key, group in comparisons.groupby(list(COMPARISON_KEYS), sort=False):
        group = group.iloc[np.argsort([rank[f] for f in group[FAMILY_COLUMN]], kind="stable")]
        decision = pd.to_numeric(group[beats], errors="coerce").to_numpy(dtype=np.float64)
        empty = ~np.isfinite(decision)
        if "n" in group:
            empty |= group["n"].to_numpy() == 0
        names = group[FAMILY_COLUMN].astype(str).to_numpy()
        beaten = [str(f) for f in names[~empty & (decision == 1)]]
        not_beaten = [str(f) for f in names[~empty & (decision != 1)]]
        no_data = [str(f) for f in names[empty]]
        rows.append(
            {
                **dict(zip(COMPARISON_KEYS, key)),
                "beaten": beaten,
                "not_beaten": not_beaten,
                "no_data": no_data,
                "line": consensus_line(beaten, not_beaten, no_data),
            }
        )
    return pd.DataFrame(rows)


def _draw_family_panel(ax, rows: pd.DataFrame, order: Sequence[str]) -> list[float]:
    """One model's panel of `draw_null_families`: per family (x position, ``order``) its null
    scores as points and a box, and the mean true score as a line; returns the plotted values."""
    shown: list[float] = []
    for x, family in enumerate(order):
        scores = rows.loc[(rows["input"] == "null") & (rows[FAMILY_COLUMN] == family), "value"].to_numpy(float)
        scores = scores[np.isfinite(scores)]
        if not scores.size:
            continue
        ax.boxplot(scores, positions=[x], widths=0.5, showfliers=False, medianprops={"color": "0.3"})
        shown.extend(scores)
        spread = np.linspace(-0.15, 0.15, scores.size) if scores.size > 1 else np.zeros(1)
        ax.scatter(x + spread, scores, s=14, alpha=0.8, zorder=3, gid=family, label=family)
    true = rows.loc[rows["input"] == "true", "value"].to_numpy(float)
    if np.isfinite(true).any():
        shown.append(float(np.nanmean(true)))
        ax.axhline(shown[-1], color="black", lw=1.2, gid="true", label="true (mean over splits)")
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(order) - 0.4)
    return shown


def draw_null_families(
    df: pd.DataFrame,
    dataset: str,
    split_type: str,
    metric: str = "pearson",
    stratum: str = "all",
    *,
    models: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    ncols: int = 4,
) -> plt.Figure:
    """Null scores of each family against the true score, one panel per model.

    Each panel (title: the model's display name) has one x position per null family: a
    point per null run (one null on one split, (repeat, fold, null) order, spread
    sideways) and a box of those points; the horizontal line is the model's mean true-input score over its
    splits. Artists carry ``gid`` = the family label (points) and ``"true"`` (line).

    Parameters
    ----------
    df : DataFrame
        Tidy results (see `family_comparisons`).
    dataset, split_type : str
        Which rows to draw.
    metric, stratum : str
        The plotted value (default: global Pearson r).
    models : sequence of str, optional
        Panels, in this order (default: every model with null rows, Table 1 order).
    families : sequence of str, optional
        Order of the families on the x axis (see `families_in`).
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When no null rows of ``dataset`` / ``split_type`` exist for the metric.
    """
    _check_columns(df, "draw_null_families")
    sel = _paired_frame(df[(df["dataset"] == dataset) & (df["split_type"] == split_type)], metric, stratum)
    null = sel[sel["input"] == "null"]
    if null.empty:
        raise ValueError(f"draw_null_families: no null rows of {dataset!r} / {split_type!r} for {metric}/{stratum}")
    order = families_in(null, families)
    panels = list(models) if models is not None else model_order(null["model"].unique())
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.2 + 1.1 * len(order) * ncols, 3.2 * nrows), squeeze=False, sharey=True
    )
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    shown: list[float] = []  # every plotted value: the shared y range must hold the true lines too
    for ax, model in zip(axes.ravel(), panels):
        order_by = ["repeat", "fold", *(["null_index"] if "null_index" in sel else [])]
        rows = sel[sel["model"] == model].sort_values(order_by, kind="mergesort")
        shown.extend(_draw_family_panel(ax, rows, order))
        ax.set_title(display(model), fontsize=9)
    low, high = min(shown), max(shown)
    pad = 0.06 * (high - low) if high > low else 0.05
    axes[0, 0].set_ylim(low - pad, high + pad)  # shared by every panel
    for row in axes:
        row[0].set_ylabel(f"test {metric} ({stratum})")
    true_lines = [ln for ax in axes.ravel() for ln in ax.lines if ln.get_gid() == "true"]
    if true_lines:
        axes[0, 0].legend(handles=true_lines[:1], fontsize=7, loc="best")
    title = f"{dataset}, {split_type} splits: null families against the true input"
    width = max(30, int(fig.get_figwidth() * 11))  # characters that fit across the figure at 10 pt
    fig.suptitle(textwrap.fill(title, width), fontsize=10)
    fig.tight_layout()
    return fig


def plot_null_families(df: pd.DataFrame, dataset: str, split_type: str, path: str | Path, **options) -> Path:
    """`draw_null_families` written as a PNG at ``path`` (options passed on); returns the path."""
    return figures.save_figure(draw_null_families(df, dataset, split_type, **options), path)
