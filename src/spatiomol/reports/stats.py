"""Paired tests over splits: true vs null input, each model vs the best linear model, and each
expression model vs the anatomy baseline.

Every split (repeat, fold) gives one paired observation ``(a, b)`` of a metric — e.g.
test Pearson r of a model trained on true expression and of the same model trained on
that split's nulls (the mean over the nulls scored on the split). On the differences
``d = a − b`` we report

- the Wilcoxon signed-rank test (`scipy.stats.wilcoxon`, two-sided),
- a sign-flip permutation p-value for the mean difference (two-sided; exact over all
  ``2**n`` sign patterns when that is at most ``n_permutations``, otherwise Monte Carlo
  with a seeded ``numpy.random.Generator`` and the ``(1 + hits) / (1 + draws)`` rule),
- effect sizes: mean and SD of ``d``, the standardised mean difference
  ``d_z = mean(d) / SD(d)`` and the matched-pairs rank-biserial correlation
  ``(W⁺ − W⁻) / (W⁺ + W⁻)``,
- Benjamini–Hochberg adjusted p-values over the rows of one table.

Splits of repeated K-fold CV share training regions, so these p-values are descriptive
(the observations are not independent); the paper reports mean ± SD only.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from spatiomol.models import registry
from spatiomol.reports.tables import LOWER_IS_BETTER
from spatiomol.reports.verdict import adjust_p, t_interval


def sign_flip_pvalue(differences: np.ndarray, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of ``mean(differences) == 0``.

    Parameters
    ----------
    differences : (n,) float array
        Paired differences.
    n_permutations : int
        Exact enumeration of all ``2**n`` sign patterns when ``2**n <= n_permutations``;
        otherwise this many random patterns.
    seed : int
        Seed of the ``numpy.random.Generator`` for the Monte Carlo case.

    Returns
    -------
    float
        Fraction of sign patterns whose ``|mean|`` is at least the observed one
        (exact), or ``(1 + hits) / (1 + n_permutations)`` (Monte Carlo).
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, np.abs(d).max())
    if 2**n <= n_permutations:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        null = np.abs(signs @ d / n)
        return float(np.mean(null >= observed - tolerance))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n_permutations, n))
    null = np.abs(signs @ d / n)
    return float((1 + np.sum(null >= observed - tolerance)) / (1 + n_permutations))


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation ``(W⁺ − W⁻) / (W⁺ + W⁻)`` (zeros dropped)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(d))
    w_plus, w_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((w_plus - w_minus) / (w_plus + w_minus))


def paired_test(a: np.ndarray, b: np.ndarray, n_permutations: int = 10000, seed: int = 0) -> dict[str, float]:
    """Paired comparison of ``a`` and ``b`` (same splits, same order).

    Returns
    -------
    dict with ``n``, ``mean_a``, ``mean_b``, ``mean_diff``, ``sd_diff`` (ddof=1),
    ``effect_dz``, ``rank_biserial``, ``wilcoxon_stat``, ``wilcoxon_p`` and
    ``signflip_p``. Metric units are those of the inputs (e.g. Pearson r).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_test: a and b must be 1-d of equal length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    n = d.size
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    out = {
        "n": n,
        "mean_a": float(a.mean()) if n else float("nan"),
        "mean_b": float(b.mean()) if n else float("nan"),
        "mean_diff": float(d.mean()) if n else float("nan"),
        "sd_diff": sd,
        "effect_dz": float(d.mean() / sd) if n > 1 and sd > 0 else float("nan"),
        "rank_biserial": rank_biserial(d),
        "wilcoxon_stat": float("nan"),
        "wilcoxon_p": float("nan"),
        "signflip_p": sign_flip_pvalue(d, n_permutations=n_permutations, seed=seed),
    }
    if n > 0 and np.any(d != 0):
        res = stats.wilcoxon(a, b)
        out["wilcoxon_stat"] = float(res.statistic)
        out["wilcoxon_p"] = float(res.pvalue)
    return out


#: the score the ladder and the input comparison pair over splits: global test Pearson r
SCORE_METRIC, SCORE_STRATUM = "pearson", "all"
#: columns of `paired_contrast`, after the caller's keys
CONTRAST_COLUMNS = ("n", "mean_diff", "sd_diff", "ci_low", "ci_high", "n_ahead", "signflip_p", "lead")


def split_scores(df: pd.DataFrame, metric: str = SCORE_METRIC, stratum: str = SCORE_STRATUM) -> pd.DataFrame:
    """One score per split of the true and null inputs.

    Parameters
    ----------
    df : DataFrame
        Results-store rows (one per run, metric and stratum).
    metric, stratum : str
        The score kept (default: global test Pearson r).

    Returns
    -------
    DataFrame with ``dataset, split_type, model, input, repeat, fold, value``: one row per
    split; a null split's ``value`` is the mean over the nulls scored on it. Units: the
    metric's (Pearson r by default).
    """
    sel = df[(df["metric"] == metric) & (df["stratum"] == stratum) & df["input"].isin(["true", "null"])]
    keys = ["dataset", "split_type", "model", "input", "repeat", "fold"]
    return sel.groupby(keys, sort=False)["value"].mean().reset_index()


def paired_contrast(
    wide: pd.DataFrame, model: str, reference: str, n_permutations: int = 10000, seed: int = 0
) -> dict[str, float | int | str] | None:
    """``model`` − ``reference`` over the splits both were scored on.

    Parameters
    ----------
    wide : DataFrame
        One row per split (repeat, fold) of one split type, one column per model; a
        higher-is-better score (test Pearson r).
    model, reference : str
        Columns of ``wide``.
    n_permutations, seed : int
        Of the sign-flip test (`paired_test`).

    Returns
    -------
    dict of `CONTRAST_COLUMNS`, or None when no split has both: ``n`` shared splits, mean
    and SD (ddof=1) of the differences, ``ci_*`` the 95% t-interval of the mean difference
    (NaN below 2 splits), ``n_ahead`` the splits where ``model`` scores higher, and
    ``lead``: ``"ahead"`` / ``"behind"`` when the interval excludes 0, ``"level"`` when it
    holds 0, ``"n/a"`` when there is no interval (one split: no test).
    """
    both = wide[[model, reference]].dropna()
    if both.empty:
        return None
    test = paired_test(both[model].to_numpy(), both[reference].to_numpy(), n_permutations=n_permutations, seed=seed)
    low, high = t_interval(test["mean_diff"], test["sd_diff"], test["n"])
    if not (np.isfinite(low) and np.isfinite(high)):
        lead = "n/a"
    else:
        lead = "ahead" if low > 0 else "behind" if high < 0 else "level"
    return {
        "n": test["n"],
        "mean_diff": test["mean_diff"],
        "sd_diff": test["sd_diff"],
        "ci_low": low,
        "ci_high": high,
        "n_ahead": int((both[model] > both[reference]).sum()),
        "signflip_p": test["signflip_p"],
        "lead": lead,
    }


def _adjust(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("wilcoxon_p", "signflip_p"):
        frame[f"{col}_bh"] = adjust_p(frame[col].to_numpy(dtype=float), "bh")
    return frame


def _per_split(df: pd.DataFrame, metric: str, stratum: str) -> pd.DataFrame:
    """The rows of ``metric``/``stratum``; the nulls of one split are averaged by `true_vs_null`."""
    sel = df[(df["metric"] == metric) & (df["stratum"] == stratum)]
    return sel[["dataset", "model", "split_type", "input", "repeat", "fold", "value"]]


def true_vs_null(
    df: pd.DataFrame, metric: str = "pearson", stratum: str = "all", n_permutations: int = 10000, seed: int = 0
) -> pd.DataFrame:
    """For each (dataset, split type, model) with both inputs: paired test true vs null.

    Parameters
    ----------
    df : tidy results (`spatiomol.experiments.store.ResultsStore.load`).
    metric, stratum : which value to compare (default global Pearson r).

    Returns
    -------
    DataFrame, one row per (dataset, split_type, model), columns of `paired_test`
    (``a`` = true, ``b`` = null: on each split the mean over the nulls scored on it, every
    null of the family on shared folds) plus BH-adjusted p-values.

    Raises
    ------
    ValueError
        When the null rows belong to several null families (``null_family`` column):
        compare one (`spatiomol.reports.null_families.family_rows`) or all of them
        (`spatiomol.reports.null_families.family_comparisons`).
    """
    if "null_family" in df.columns:
        families = sorted(set(df.loc[df["input"] == "null", "null_family"].astype(str)))
        if len(families) > 1:
            raise ValueError(
                f"true_vs_null: null rows of {len(families)} null families {families}; expected one "
                "(select it with spatiomol.reports.null_families.family_rows, or compare every family "
                "with family_comparisons)"
            )
    values = _per_split(df, metric, stratum)
    rows = []
    for (dataset, split_type, model), group in values.groupby(["dataset", "split_type", "model"], sort=False):
        wide = group.pivot_table(index=["repeat", "fold"], columns="input", values="value", aggfunc="mean")
        if "true" not in wide or "null" not in wide:
            continue
        wide = wide.dropna(subset=["true", "null"]).sort_index()
        res = paired_test(wide["true"].to_numpy(), wide["null"].to_numpy(), n_permutations, seed)
        rows.append(
            {"dataset": dataset, "split_type": split_type, "model": model, "metric": metric, "stratum": stratum, **res}
        )
    return _adjust(pd.DataFrame(rows)) if rows else pd.DataFrame()


def linear_models(models) -> list[str]:
    """Those of ``models`` whose registry family is ``"linear"`` (the bilinear models).

    Raises ValueError (`registry.spec`) for a name the registry lacks.
    """
    return [m for m in dict.fromkeys(models) if registry.spec(m).category == "linear"]


def best_linear_model(df: pd.DataFrame, dataset: str, split_type: str, metric: str = "pearson") -> str | None:
    """The linear-family model with the best mean true-input global metric (highest, or lowest for errors)."""
    sel = df[
        (df["dataset"] == dataset)
        & (df["split_type"] == split_type)
        & (df["input"] == "true")
        & (df["metric"] == metric)
        & (df["stratum"] == "all")
    ]
    sel = sel[sel["model"].isin(linear_models(sel["model"]))]
    if sel.empty:
        return None
    # a split with a single test edge (a 2-region held-out system) has no Pearson r
    means = sel.groupby("model")["value"].mean().dropna()
    if means.empty:
        return None
    return str(means.idxmin() if metric in LOWER_IS_BETTER else means.idxmax())


def _versus(df: pd.DataFrame, metric: str, stratum: str, n_permutations: int, seed: int, choose) -> pd.DataFrame:
    """`paired_test` per (dataset, split type) of each model ``choose`` names (a) against its
    reference (b), over the splits where both have a true-input value.

    ``choose(dataset, split_type, models)`` returns ``(reference, models to compare)``, or
    None to skip that split type.
    """
    values = _per_split(df[df["input"] == "true"], metric, stratum)
    rows = []
    for (dataset, split_type), group in values.groupby(["dataset", "split_type"], sort=False):
        wide = group.pivot_table(index=["repeat", "fold"], columns="model", values="value", aggfunc="first")
        chosen = choose(dataset, split_type, list(wide.columns))
        if chosen is None:
            continue
        reference, models = chosen
        for model in models:
            pair = wide[[model, reference]].dropna()
            res = paired_test(pair[model].to_numpy(), pair[reference].to_numpy(), n_permutations, seed)
            key = {"dataset": dataset, "split_type": split_type, "model": model, "reference": reference}
            rows.append({**key, "metric": metric, "stratum": stratum, **res})
    return _adjust(pd.DataFrame(rows)) if rows else pd.DataFrame()


def versus_best_linear(
    df: pd.DataFrame, metric: str = "pearson", stratum: str = "all", n_permutations: int = 10000, seed: int = 0
) -> pd.DataFrame:
    """Each model (true input) vs the best linear model, paired over splits.

    Returns
    -------
    DataFrame, one row per (dataset, split_type, model ≠ reference), with
    ``reference`` naming the best linear model and the `paired_test` columns
    (``a`` = model, ``b`` = reference) plus BH-adjusted p-values.
    """

    def choose(dataset: str, split_type: str, models: list[str]):
        reference = best_linear_model(df, dataset, split_type, metric)
        return None if reference is None else (reference, [m for m in models if m != reference])

    return _versus(df, metric, stratum, n_permutations, seed, choose)


#: registry name of the anatomy baseline (`spatiomol.models.anatomy.AnatomyBaseline`)
ANATOMY_MODEL = "anatomy"


def versus_anatomy(
    df: pd.DataFrame, metric: str = "pearson", stratum: str = "all", n_permutations: int = 10000, seed: int = 0
) -> pd.DataFrame:
    """Each expression model (true input) vs the anatomy baseline, paired over shared splits.

    The anatomy baseline (registry ``"anatomy"``) sees coordinates, hemisphere, structure
    class and homologues but no expression, so a positive difference says the model's
    expression adds to anatomy, not only to spatial nulls. Models whose registry spec reads
    no expression (distance rules, MLP on coordinates) are left out.

    Returns
    -------
    DataFrame, one row per (dataset, split_type, expression model), with ``reference`` =
    ``"anatomy"`` and the `paired_test` columns (``a`` = model, ``b`` = anatomy) plus
    BH-adjusted p-values; empty when no split type has anatomy runs.
    """

    def choose(dataset: str, split_type: str, models: list[str]):
        if ANATOMY_MODEL not in models:
            return None
        readers = [m for m in models if m in registry.MODELS and registry.spec(m).reads_expression]
        return (ANATOMY_MODEL, readers) if readers else None

    return _versus(df, metric, stratum, n_permutations, seed, choose)
