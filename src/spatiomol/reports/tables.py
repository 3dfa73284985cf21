"""Tables shaped like the paper's Tables 1–3, from the tidy results store.

Every cell is ``mean ± SD`` over splits (repeats × folds; SD with ddof=1, as pandas),
computed by `split_summary`; the Markdown tables are formatted views of that one frame,
and the same numbers are written unformatted to CSV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatiomol.evaluation.splits import SPLIT_KINDS
from spatiomol.experiments.config import TABLE3_VARIANTS
from spatiomol.models import registry

#: (metric, stratum, column title, format) of Table 1 (besides Pearson r true / null)
TABLE1_COLUMNS = (("mse", "all", "MSE", ".4f"), ("geodesic", "all", "Geodesic", ".2f"))
#: Table 2: stratified Pearson r
TABLE2_COLUMNS = (
    ("pearson", "distance:short", "Short r"),
    ("pearson", "distance:long", "Long r"),
    ("pearson", "hemisphere:inter", "Inter-hemi r"),
    ("pearson", "strength:strong-positive", "Strong-pos r"),
)
#: Table 3: feature-access variants
TABLE3_COLUMNS = (
    ("pearson", "all", "Pearson r", ".2f"),
    ("pearson", "distance:short", "Short r", ".2f"),
    ("pearson", "distance:mid", "Mid r", ".2f"),
    ("pearson", "distance:long", "Long r", ".2f"),
    ("r2", "all", "R²", ".2f"),
    ("mse", "all", "MSE", ".4f"),
    ("geodesic", "all", "Geodesic", ".2f"),
)
#: Table 3 "Features" name of the expression a model reads, per input kind
EXPRESSION_FEATURES = {"true": "expression", "null": "SM", "permuted": "permuted"}
LOWER_IS_BETTER = {"mse", "mae", "geodesic"}
GROUP = ["dataset", "split_type", "model", "input", "metric", "stratum"]
#: column naming a null run's family (`spatiomol.experiments.config.null_family_label`)
FAMILY = "null_family"


def split_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD (ddof=1) and number of splits per (dataset, split, model, input, metric, stratum).

    Null inputs have one run per null and split (shared folds), so their mean and SD are
    over every null run, and ``n_splits`` counts those runs (K nulls × splits).

    When ``df`` has a ``null_family`` column (stored results do), it is a key too, so the
    null runs of several families side by side are summarised apart. Also carries the
    mean ``n_parameters`` and ``fit_seconds`` of the runs.
    """
    keys = [*GROUP, FAMILY] if FAMILY in df.columns else list(GROUP)
    if df.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sd", "n_splits", "n_parameters", "fit_seconds"])
    grouped = df.groupby(keys, sort=False)
    out = grouped["value"].agg(mean="mean", sd="std", n_splits="count").reset_index()
    extra = grouped[["n_parameters", "fit_seconds"]].mean().reset_index()
    return out.merge(extra, on=keys)


def model_order(models) -> list[str]:
    """Table 1 rows in Table 1 order, then the other registry models in registry order.

    Raises ValueError (`registry.spec`) for a name the registry lacks.
    """
    present = set(models)
    for model in present:
        registry.spec(model)
    return [m for m in [*registry.TABLE1, *registry.names(table1=False)] if m in present]


def display(model: str) -> str:
    """Table name of registry model ``model`` (`ModelSpec.display`); ValueError if unknown."""
    return registry.spec(model).display


def format_cell(mean: float, sd: float, fmt: str = ".2f") -> str:
    """``"0.83 ± 0.03"``; a missing value is ``"–"``; SD of one split is shown as ``"n/a"``."""
    if mean is None or not np.isfinite(mean):
        return "–"
    sd_text = "n/a" if sd is None or not np.isfinite(sd) else format(sd, fmt)
    return f"{format(mean, fmt)} ± {sd_text}"


def contrast_cell(record) -> str:
    """``"+0.061 ± 0.031 (4; ahead on 4; ahead)"``: a `spatiomol.reports.stats.paired_contrast`
    row as a table cell (mean ± SD of the difference, n, splits ahead, lead)."""
    spread = format_cell(record["mean_diff"], record["sd_diff"], "+.3f").replace("± +", "± ")
    return f"{spread} ({int(record['n'])}; ahead on {int(record['n_ahead'])}; {record['lead']})"


def text_grid(frame: pd.DataFrame, rows, cols, render) -> pd.DataFrame:
    """A text table of ``frame``'s records: one row per ``(label, {column: value})`` of ``rows``,
    one column per ``(label, {column: value})`` of ``cols``; each cell is ``render`` of the
    first record matching both selections, or ``"–"`` where none does."""
    cells: dict[str, dict[str, str]] = {}
    for row_label, row_match in rows:
        mask = np.logical_and.reduce([frame[k] == v for k, v in row_match.items()])
        chosen = frame[mask]
        row = {}
        for col_label, col_match in cols:
            hit = chosen[np.logical_and.reduce([chosen[k] == v for k, v in col_match.items()])]
            row[col_label] = "–" if hit.empty else render(hit.iloc[0])
        cells[row_label] = row
    return pd.DataFrame.from_dict(cells, orient="index")


def _lookup(summary: pd.DataFrame) -> dict[tuple, tuple[float, float]]:
    """(dataset, split, model, input, metric, stratum) → (mean, SD); one summary row per key.

    Raises
    ------
    ValueError
        When a key has several rows (the null runs of several families): the tables show
        one family, chosen with `spatiomol.reports.null_families.family_rows` before
        `split_summary`.
    """
    repeated = summary.duplicated(GROUP, keep=False)
    if repeated.any():
        example = summary.loc[repeated, [*GROUP, *([FAMILY] if FAMILY in summary else [])]].head(2)
        raise ValueError(
            f"tables: {int(repeated.sum())} summary rows share a (dataset, split, model, input, metric, stratum) "
            f"cell, e.g. {example.to_dict('records')}; expected one null family "
            "(select it with spatiomol.reports.null_families.family_rows before split_summary)"
        )
    return {
        tuple(row[c] for c in GROUP): (row["mean"], row["sd"])
        for row in summary[[*GROUP, "mean", "sd"]].to_dict("records")
    }


def _bold_best(frame: pd.DataFrame, numeric: pd.DataFrame, lower: dict[str, bool]) -> pd.DataFrame:
    out = frame.copy()
    for col, low in lower.items():
        vals = numeric[col].astype(float)
        if vals.notna().sum() < 2:
            continue
        best = vals.idxmin() if low else vals.idxmax()
        first, sep, rest = str(out.loc[best, col]).partition(" / ")  # bold the true-input value only
        out.loc[best, col] = f"**{first}**{sep}{rest}"
    return out


def table1(summary: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 for ``dataset``: per split type Pearson r (true / null), MSE, geodesic.

    Returns
    -------
    (formatted, numeric) DataFrames indexed by display name; ``numeric`` holds the
    means and SDs (columns ``<split> <title> mean|sd``) the formatted cells show.
    Best true-input value per column in bold.
    """
    s = summary[summary["dataset"] == dataset]
    look = _lookup(s)
    splits = [k for k in SPLIT_KINDS if k in set(s["split_type"])]
    models = model_order(s.loc[s["input"] == "true", "model"])
    text_rows, num_rows, lower = [], [], {}
    for model in models:
        text, num = {}, {}
        for split in splits:
            t_mean, t_sd = look.get((dataset, split, model, "true", "pearson", "all"), (np.nan, np.nan))
            n_mean, n_sd = look.get((dataset, split, model, "null", "pearson", "all"), (np.nan, np.nan))
            col = f"{split}: Pearson r (true / null)"
            text[col] = f"{format_cell(t_mean, t_sd)} / {format_cell(n_mean, n_sd)}"
            num.update(
                {
                    f"{split} pearson true mean": t_mean,
                    f"{split} pearson true sd": t_sd,
                    f"{split} pearson null mean": n_mean,
                    f"{split} pearson null sd": n_sd,
                }
            )
            lower[col] = False
            for metric, stratum, title, fmt in TABLE1_COLUMNS:
                mean, sd = look.get((dataset, split, model, "true", metric, stratum), (np.nan, np.nan))
                col = f"{split}: {title}"
                text[col] = format_cell(mean, sd, fmt)
                num.update({f"{split} {metric} true mean": mean, f"{split} {metric} true sd": sd})
                lower[col] = metric in LOWER_IS_BETTER
        text_rows.append(text)
        num_rows.append(num)
    names = [display(m) for m in models]
    formatted = pd.DataFrame(text_rows, index=pd.Index(names, name="Model"))
    numeric = pd.DataFrame(num_rows, index=pd.Index(names, name="Model"))
    rank_view = pd.DataFrame(index=formatted.index)
    for col in formatted.columns:
        split, _, title = col.partition(": ")
        metric = {"MSE": "mse", "Geodesic": "geodesic"}.get(title, "pearson")
        rank_view[col] = numeric[f"{split} {metric} true mean"]
    return _bold_best(formatted, rank_view, lower), numeric


def table2(summary: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2 for ``dataset``: stratified Pearson r (true input) per split type."""
    s = summary[(summary["dataset"] == dataset) & (summary["input"] == "true")]
    look = _lookup(s)
    splits = [k for k in SPLIT_KINDS if k in set(s["split_type"])]
    models = model_order(s["model"])
    text_rows, num_rows, lower = [], [], {}
    for model in models:
        text, num = {}, {}
        for split in splits:
            for metric, stratum, title in TABLE2_COLUMNS:
                mean, sd = look.get((dataset, split, model, "true", metric, stratum), (np.nan, np.nan))
                text[f"{split}: {title}"] = format_cell(mean, sd)
                num[f"{split}: {title} mean"] = mean
                num[f"{split}: {title} sd"] = sd
                lower[f"{split}: {title}"] = False
        text_rows.append(text)
        num_rows.append(num)
    names = [display(m) for m in models]
    formatted = pd.DataFrame(text_rows, index=pd.Index(names, name="Model"))
    numeric = pd.DataFrame(num_rows, index=pd.Index(names, name="Model"))
    rank_view = pd.DataFrame({c: numeric[f"{c} mean"] for c in formatted.columns}, index=formatted.index)
    return _bold_best(formatted, rank_view, lower), numeric


def feature_name(model: str, input_kind: str) -> str:
    """Table 3's "Features" label of a (model, input) cell, from the model's `ModelSpec`.

    The expression part names the input (``expression`` / ``SM`` for a CGE-matched null /
    ``permuted``) and appears only for a model that reads expression; ``coords`` is added
    for a model that reads coordinates: ``"SM + coords"`` for SMT w/ [CLS] on a null,
    ``"coords"`` for the coordinates-only MLP; ``SC`` is added for a model that reads
    structural connectivity (``"SC"`` alone for the SC-only MLP).

    Raises
    ------
    ValueError
        For a model the registry lacks or an input kind other than true/null/permuted.
    """
    spec = registry.spec(model)
    if input_kind not in EXPRESSION_FEATURES:
        raise ValueError(
            f"model {model!r}: unknown input {input_kind!r}; expected one of {sorted(EXPRESSION_FEATURES)}"
        )
    parts = ([EXPRESSION_FEATURES[input_kind]] if spec.reads_expression else []) + (
        ["coords"] if spec.reads_coords else []
    )
    return " + ".join(parts + (["SC"] if spec.reads_structural else []))


def table3(
    summary: pd.DataFrame, dataset: str, split_type: str = "random", variants=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3 for ``dataset``: null models with varying feature access (``split_type`` splits).

    ``variants`` lists the ``{model, input}`` cells to show, in order (default: the
    paper's, `spatiomol.experiments.config.TABLE3_VARIANTS`); absent cells are skipped.
    """
    s = summary[(summary["dataset"] == dataset) & (summary["split_type"] == split_type)]
    look = _lookup(s)
    present = set(zip(s["model"], s["input"]))
    wanted = variants if variants else TABLE3_VARIANTS
    cells = [(v["model"], v["input"]) for v in wanted if (v["model"], v["input"]) in present]
    text_rows, num_rows = [], []
    for model, inp in cells:
        text = {"Model": display(model), "Features": feature_name(model, inp)}
        num = dict(text)
        for metric, stratum, title, fmt in TABLE3_COLUMNS:
            mean, sd = look.get((dataset, split_type, model, inp, metric, stratum), (np.nan, np.nan))
            text[title] = format_cell(mean, sd, fmt)
            num[f"{title} mean"] = mean
            num[f"{title} sd"] = sd
        text_rows.append(text)
        num_rows.append(num)
    return pd.DataFrame(text_rows), pd.DataFrame(num_rows)


def network_gain(summary: pd.DataFrame, dataset: str, split_type: str, model: str, reference: str) -> pd.DataFrame:
    """Fig. 5B: per-network gain in mean test Pearson r of ``model`` over ``reference``.

    Uses the strata ``network:<N>:intra`` (both ends in N) and ``network:<N>:rest``
    (one end in N) of `spatiomol.evaluation.metrics.stratum_masks`.

    Returns
    -------
    DataFrame with columns ``network, edges ("intra"|"rest"), model_r, reference_r, gain``.
    """
    s = summary[
        (summary["dataset"] == dataset)
        & (summary["split_type"] == split_type)
        & (summary["input"] == "true")
        & (summary["metric"] == "pearson")
        & summary["stratum"].str.startswith("network:")
    ]
    a = s[s["model"] == model].set_index("stratum")["mean"]
    b = s[s["model"] == reference].set_index("stratum")["mean"]
    rows = []
    for stratum in a.index.intersection(b.index):
        _, network, edges = stratum.split(":", 2)
        rows.append(
            {
                "network": network,
                "edges": edges,
                "model_r": a[stratum],
                "reference_r": b[stratum],
                "gain": a[stratum] - b[stratum],
            }
        )
    return pd.DataFrame(rows, columns=["network", "edges", "model_r", "reference_r", "gain"])


def to_markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    if frame.empty:
        return "_no rows_\n"
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for idx, row in frame.iterrows():
        cells = ([str(idx)] if index else []) + [format_value(v).replace("|", "\\|") for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_value(value) -> str:
    """A table cell as text: floats to 3 decimals (3 significant digits below 1e-3), NaN as "–"."""
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)
