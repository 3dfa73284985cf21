"""The rank verdict: does the true brain score above its nulls? An exact true-vs-null test.

The paired test of `spatiomol.reports.stats` (true vs the nulls of each split, Wilcoxon or
sign-flip over the splits) answers "is the mean over splits of true − null zero *for this
brain*?". The splits of one brain are not replicates of the question the nulls ask: the
true brain is *one* draw, and whether its score lies above the nulls' mean is a coin flip
even when its expression is exchangeable with the nulls. With 40 splits the paired test
turns that coin flip into p < 0.05, so its false-positive rate is far above α even with
ideal nulls (measured in ``docs/calibration.md``).

`rank_test` asks the question the nulls can answer: is the true brain's score — its mean
test metric over a set of splits S — higher than the scores of ``K`` nulls, each the mean
over the *same* splits S? The p-value (Phipson & Smyth 2010) is

    p = (1 + #{k : null_k ≥ true}) / (1 + K)

(ties count against the true brain; the smallest p is ``1/(K + 1)``, `min_nulls`: 19
nulls for α = 0.05, 99 for α = 0.01).

**Shared folds** (the experiment grid's design, `spatiomol.experiments.grid`): every null
is scored on exactly the splits of the true runs, with the same model seeds. When the
true expression carries nothing its nulls do not (it is exchangeable with them), the
``K + 1`` scores on S are exchangeable — the split noise is common to all of them and
cancels in the ranking — so the rank of the true score is uniform and the test is exact:
P(p ≤ α) ≤ α for every α, with equality at α = m/(K + 1).

`true_vs_nulls` applies it to a tidy results table, one verdict per (dataset, split
type, model[, null family]):

- S is the set of splits with a true score that the nulls were scored on: the most common
  set (ties: the larger) among the nulls' sets of scored splits. A null missing some split
  of S (a failed or not yet finished run) is dropped, and counted in ``n_nulls_dropped``.
  The true score and every kept null's score are means over S.
- ``effect`` = true − mean null score, sign flipped for errors (`LOWER_IS_BETTER`) so that
  positive means "better than the nulls"; ``effect_z`` = effect / SD of the null scores
  (ddof=1); ``effect_low``, ``effect_high``: a 95% t-interval for the effect,
  ``effect ± t(0.975, K − 1) · SD / √K``. **What the interval covers**: the Monte Carlo
  error of the mean null score — the effect that infinitely many nulls of the family,
  scored on *these* splits with *these* model seeds, would give. It holds the true score
  and the splits fixed, so it does not cover split resampling (another draw of CV folds)
  or the true brain being one draw; it assumes roughly normal null scores.
- Multiplicity: ``p_holm`` (Holm) and ``p_bh`` (Benjamini–Hochberg, `adjust_p`) across
  every row of one (dataset, null family) — the models × split types of a report — and
  ``reject`` is ``p_holm ≤ α``. With m such rows the smallest Holm-adjusted p is
  ``m/(K + 1)``: K must exceed ``m/α − 1`` for any verdict to reject.
- ``design``: ``"shared folds"``; a results folder made by the grid's earlier design
  (null ``k`` scored on the folds of repeat ``k`` only; paper App. A.4) still gets a
  verdict, computed the old way — the true score over all its splits against each null's
  mean over its own repeat — labelled ``"one null per repeat (legacy)"``. There split
  noise does not cancel and the true score averages more splits than any null's, so the
  test is conservative (false-positive rate 0–0.02 at α = 0.05 in docs/calibration.md),
  not exact; the report flags it.

The family of nulls still decides whether "exchangeable" holds: nulls that destroy the
spatial autocorrelation of the expression make every brain look significant whatever
the test (also measured in ``docs/calibration.md``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from spatiomol.reports.tables import LOWER_IS_BETTER

#: default significance level of the verdict
ALPHA = 0.05
#: columns that identify one verdict of a tidy results table
VERDICT_KEYS = ("dataset", "split_type", "model")
#: ``design`` of a verdict whose nulls were scored on the true brain's splits
SHARED_FOLDS = "shared folds"
#: ``design`` of a verdict from a folder of the earlier grid (null k on repeat k only)
LEGACY_DESIGN = "one null per repeat (legacy)"
#: multiplicity adjustments of `adjust_p`
ADJUST_METHODS = ("holm", "bh")


def min_nulls(alpha: float = ALPHA) -> int:
    """Smallest number of nulls ``K`` with which `rank_test` can reach ``p ≤ alpha`` (``1/(K+1) ≤ alpha``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    # round away the float error of 1/alpha (1/0.05 - 1 is 19, not 19.000000000000004)
    return max(1, math.ceil(round(1.0 / alpha - 1.0, 9)))


def adjust_p(p: np.ndarray | Sequence[float], method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values over the finite entries of ``p`` (NaN stays NaN).

    Parameters
    ----------
    p : array of float
        Raw p-values; NaN entries are left NaN and do not count in the family size m.
    method : {"holm", "bh"}
        ``"holm"``: Holm's step-down adjustment (family-wise error rate), the i-th smallest
        p becomes ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``. ``"bh"``: Benjamini–Hochberg
        (false discovery rate), ``min_{j ≥ i} min(1, m · p_(j) / j)``.

    Returns
    -------
    ndarray of float, the shape of ``p``.

    Raises
    ------
    ValueError
        For another ``method``, or a finite p outside [0, 1].
    """
    if method not in ADJUST_METHODS:
        raise ValueError(f"adjust_p: method must be one of {list(ADJUST_METHODS)}, got {method!r}")
    values = np.asarray(p, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if not finite.any():
        return out
    raw = values[finite]
    if (raw < 0).any() or (raw > 1).any():
        raise ValueError(f"adjust_p: p-values must lie in [0, 1], got {raw[(raw < 0) | (raw > 1)][:3].tolist()}")
    if method == "bh":
        out[finite] = scipy_stats.false_discovery_control(raw, method="bh")
        return out
    # Holm (scipy has no Holm step-down): the i-th smallest p becomes max_{j ≤ i} (m − j + 1) p_(j)
    m = raw.size
    order = np.argsort(raw, kind="mergesort")
    result = np.empty(m)
    result[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * raw[order]))
    out[finite] = result
    return out


def t_interval(centre: float, sd: float, n: int) -> tuple[float, float]:
    """95% t-interval ``centre ± t_{0.975, n−1} · sd/√n``; NaNs below 2 values or without a finite SD."""
    if n < 2 or not np.isfinite(sd):
        return float("nan"), float("nan")
    half = scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return centre - half, centre + half


def holm_floor(m: int, k: int) -> float:
    """Smallest Holm-adjusted p of ``m`` rank verdicts with ``k`` nulls each: ``min(1, m/(k + 1))``."""
    return min(1.0, m / (k + 1))


def nulls_for_holm(m: int, alpha: float = ALPHA) -> int:
    """Fewest nulls with which the smallest Holm p of ``m`` verdicts reaches ``alpha``: ``⌈m/α − 1⌉``."""
    return math.ceil(round(m / alpha - 1.0, 9))


def _null_means(null_scores: np.ndarray | Sequence[Sequence[float]]) -> tuple[np.ndarray, int]:
    """(K,) mean finite score of each null that has one, and how many nulls had none."""
    if isinstance(null_scores, np.ndarray) and null_scores.ndim == 2:
        rows = list(null_scores.astype(np.float64))
    elif isinstance(null_scores, np.ndarray) and null_scores.ndim == 1 and null_scores.dtype != object:
        raise ValueError(
            "null_scores must be 2-d (one row of split scores per null) or a sequence of 1-d arrays; "
            f"got a 1-d array of shape {null_scores.shape} (wrap single scores as null_scores[:, None])"
        )
    else:
        rows = [np.asarray(row, dtype=np.float64).ravel() for row in null_scores]
    means = [row[np.isfinite(row)].mean() for row in rows if np.isfinite(row).any()]
    return np.asarray(means, dtype=np.float64), len(rows) - len(means)


def rank_test(
    true_scores: np.ndarray | Sequence[float],
    null_scores: np.ndarray | Sequence[Sequence[float]],
    *,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
) -> dict[str, float]:
    """Rank of the true brain's mean score among its nulls' mean scores (one-sided).

    Exact when every null was scored on the same splits as ``true_scores`` (shared folds,
    see the module docstring); `true_vs_nulls` aligns the splits of a results table.

    Parameters
    ----------
    true_scores : (S,) float array
        Test metric of the model fitted on the true expression, one value per split
        (e.g. Pearson r); NaN values are dropped.
    null_scores : (K, S') float array, or a sequence of K 1-d arrays
        Row ``k``: the same metric of the model fitted on null ``k``, one value per split
        that null was scored on (rows may differ in length; NaN dropped; a row without a
        finite value is dropped with its null).
    higher_is_better : bool
        True for correlations (the true brain should score higher), False for errors.
    alpha : float
        Level of the verdict ``reject`` (unadjusted; `true_vs_nulls` adjusts it).

    Returns
    -------
    dict
        ``n_nulls`` (K with a finite score), ``n_nulls_dropped`` (rows without one),
        ``n_splits`` (finite true scores), ``true_mean``, ``null_mean``, ``null_sd``
        (ddof=1, metric units), ``effect`` (``true_mean − null_mean``, sign flipped for
        errors so that positive means "better than the nulls"), ``effect_z``
        (``effect / null_sd``), ``effect_low`` and ``effect_high`` (``effect ± t(0.975,
        K − 1) · null_sd / √K``: the Monte Carlo error of the mean null on these splits,
        not split resampling), ``n_as_good`` (nulls scoring at least as well as the true
        brain), ``p`` (``(1 + n_as_good) / (1 + K)``), ``min_p`` (``1/(1+K)``) and
        ``reject`` (1.0 when ``p ≤ alpha``, else 0.0; NaN without scores).

    Raises
    ------
    ValueError
        For a non-finite or out-of-range ``alpha`` or a ``null_scores`` that is not 2-d.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    true = np.asarray(true_scores, dtype=np.float64).ravel()
    true = true[np.isfinite(true)]
    nulls, dropped = _null_means(null_scores)
    k = int(nulls.size)
    nan = float("nan")
    out = {
        "n_nulls": k,
        "n_nulls_dropped": dropped,
        "n_splits": int(true.size),
        "true_mean": float(true.mean()) if true.size else nan,
        "null_mean": float(nulls.mean()) if k else nan,
        "null_sd": float(nulls.std(ddof=1)) if k > 1 else nan,
        "effect": nan,
        "effect_z": nan,
        "effect_low": nan,
        "effect_high": nan,
        "n_as_good": nan,
        "p": nan,
        "min_p": 1.0 / (1 + k),
        "reject": nan,
    }
    if not true.size or not k:
        return out
    sign = 1.0 if higher_is_better else -1.0
    out["effect"] = sign * (out["true_mean"] - out["null_mean"])
    if k > 1:
        out["effect_low"], out["effect_high"] = t_interval(out["effect"], out["null_sd"], k)
        if out["null_sd"] > 0:
            out["effect_z"] = out["effect"] / out["null_sd"]
    gap = sign * (out["true_mean"] - nulls)  # > 0: the true brain does better than null k
    as_good = int(np.sum(gap <= 0))
    out["n_as_good"] = as_good
    out["p"] = (1 + as_good) / (1 + k)
    out["reject"] = float(out["p"] <= alpha)
    return out


def _is_legacy(null: pd.DataFrame) -> bool:
    """Whether null rows come from the earlier grid: several nulls, each split scored by one null only."""
    if null["null_index"].nunique() < 2:
        return False  # one null: both designs score it on every split
    per_split = null.groupby(["repeat", "fold"])["null_index"].nunique()
    return bool((per_split == 1).all())


def shared_splits(true: pd.Series, nulls: dict[int, pd.Series]) -> frozenset:
    """S: the most common set of true-run splits the nulls were scored on (ties: the larger set).

    ``true``: finite true scores indexed by split; ``nulls``: null index → finite scores
    indexed by split. Empty when no null was scored on a split of the true runs.
    """
    have = frozenset(true.index)
    sets = Counter(frozenset(scores.index) & have for scores in nulls.values())
    sets.pop(frozenset(), None)
    if not sets:
        return frozenset()
    return max(sets, key=lambda s: (sets[s], len(s), sorted(s)))


def _shared_fold_test(
    true_rows: pd.DataFrame, null_rows: pd.DataFrame, higher_is_better: bool, alpha: float
) -> dict[str, float]:
    """`rank_test` of the true score and each null's score over the shared splits S."""

    def by_split(rows: pd.DataFrame) -> pd.Series:
        scores = rows.groupby(["repeat", "fold"])["value"].mean()
        return scores[np.isfinite(scores.to_numpy(dtype=np.float64))]

    true = by_split(true_rows)
    nulls = {int(k): by_split(g) for k, g in null_rows.groupby("null_index", sort=True)}
    splits = shared_splits(true, nulls)
    order = sorted(splits)
    kept = [scores.loc[order].to_numpy(dtype=np.float64) for scores in nulls.values() if splits <= set(scores.index)]
    result = rank_test(
        true.loc[order].to_numpy(dtype=np.float64) if order else np.array([]),
        kept if kept else np.empty((0, 0)),
        higher_is_better=higher_is_better,
        alpha=alpha,
    )
    result["n_nulls_dropped"] = len(nulls) - len(kept)
    return result


def true_vs_nulls(
    df: pd.DataFrame,
    metric: str = "pearson",
    stratum: str = "all",
    *,
    alpha: float = ALPHA,
    family: str | None = None,
) -> pd.DataFrame:
    """`rank_test` on shared folds for each (dataset, split type, model) of a tidy results table.

    Parameters
    ----------
    df : DataFrame
        Tidy results (`spatiomol.experiments.store.ResultsStore.load`): columns
        ``dataset, model, split_type, input, repeat, fold, null_index, metric, stratum,
        value``. True rows (``input == "true"``) give the true scores; null rows
        (``input == "null"``) are grouped by ``null_index``, one null per index.
    metric, stratum : str
        Which value to compare (default: global Pearson r). Errors (`LOWER_IS_BETTER`)
        are compared lower-is-better.
    alpha : float
        Level of the ``reject`` column (on the Holm-adjusted p).
    family : str or None
        A column naming the null family of null rows, if the table mixes families: one
        verdict per family, each against the same true rows.

    Returns
    -------
    DataFrame
        One row per (dataset, split_type, model[, family]) with true and null rows: those
        keys, ``metric``, ``stratum``, ``design`` (`SHARED_FOLDS` or `LEGACY_DESIGN`), the
        `rank_test` columns (``n_splits`` = |S|; ``n_nulls_dropped``: nulls missing some
        split of S), and ``p_holm`` and ``p_bh`` (`adjust_p` across the rows of one
        (dataset, family): every model × split type); ``reject`` is ``p_holm ≤ alpha``
        (NaN where p is NaN). See the module docstring for S, the effect and its interval.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    keys = list(VERDICT_KEYS)
    needed = {*keys, "input", "repeat", "fold", "null_index", "metric", "stratum", "value"}
    needed |= {family} if family else set()
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(f"true_vs_nulls: results table lacks columns {missing}")
    sel = df[(df["metric"] == metric) & (df["stratum"] == stratum)]
    true = sel[sel["input"] == "true"]
    null = sel[sel["input"] == "null"]
    null_keys = [*keys, family] if family else keys
    higher = metric not in LOWER_IS_BETTER
    rows = []
    for key, group in null.groupby(null_keys, sort=False):
        base = dict(zip(null_keys, key))
        mask = np.ones(len(true), dtype=bool)
        for column in keys:
            mask &= (true[column] == base[column]).to_numpy()
        if not mask.any():
            continue
        if _is_legacy(group):
            design = LEGACY_DESIGN
            per_null = [g["value"].to_numpy(dtype=np.float64) for _, g in group.groupby("null_index", sort=True)]
            result = rank_test(
                true.loc[mask, "value"].to_numpy(dtype=np.float64), per_null, higher_is_better=higher, alpha=alpha
            )
        else:
            design = SHARED_FOLDS
            result = _shared_fold_test(true[mask], group, higher, alpha)
        rows.append({**base, "metric": metric, "stratum": stratum, "design": design, **result})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    groups = ["dataset", family] if family else ["dataset"]
    for _, group in out.groupby(groups, sort=False, dropna=False):
        index = group.index
        p = group["p"].to_numpy(dtype=np.float64)
        out.loc[index, "p_holm"] = adjust_p(p, "holm")
        out.loc[index, "p_bh"] = adjust_p(p, "bh")
    out["reject"] = np.where(out["p_holm"].notna(), (out["p_holm"] <= alpha).astype(float), np.nan)
    return out


__all__ = [
    "ADJUST_METHODS",
    "ALPHA",
    "LEGACY_DESIGN",
    "SHARED_FOLDS",
    "VERDICT_KEYS",
    "adjust_p",
    "holm_floor",
    "min_nulls",
    "nulls_for_holm",
    "rank_test",
    "shared_splits",
    "t_interval",
    "true_vs_nulls",
]
