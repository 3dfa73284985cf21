"""The rank verdict: does the true brain score above its nulls? A calibrated true-vs-null test.

The paired test of `spatiomol.reports.stats` (true vs one null per split, Wilcoxon or
sign-flip over the splits) answers "is the mean over splits of true − null zero *for this
brain*?". The splits of one brain are not replicates of the question the nulls ask: the
true brain is *one* draw, and whether its score lies above the nulls' mean is a coin flip
even when its expression is exchangeable with the nulls. With 40 splits the paired test
turns that coin flip into p < 0.05, so its false-positive rate is far above α even with
ideal nulls (measured in ``docs/calibration.md``: with nulls drawn from the very model that
made the expression, it calls a spatial-only brain "beats null" in a large fraction of
simulations, and rejects in either direction even more often).

`rank_test` asks the question the nulls can answer: is the true brain's score — its mean
test metric over the splits it was scored on — higher than the scores of ``K`` nulls (each
the mean over the splits that null was scored on)? The Monte Carlo p-value is

    p = (1 + #{k : null_k ≥ true}) / (1 + K)

(ties count against the true brain). It rejects at level α only when ``K ≥ 1/α − 1``
(`min_nulls`: 19 for α = 0.05).

Validity (p ≤ α with probability at most α when the true expression is exchangeable with
its nulls) depends on how the scores were made:

- *Shared splits*: the true brain and every null scored on the same splits. The ``K + 1``
  scores are exchangeable and the test is exact.
- *One null per repeat* (the experiment runner's design, ``null_index = repeat % top``
  with ``top = n_repeats``): null ``r`` is scored on the folds of repeat ``r`` and the true
  brain on every repeat. Each null has its own random splits, so split noise does not
  cancel, and the true score averages more splits than any null's; for roughly
  normal scores this makes the test conservative (its false-positive rate is at most
  α). ``docs/calibration.md`` measures it with simulated brains.

The family of nulls still decides whether "exchangeable" holds: nulls that destroy the
spatial autocorrelation of the expression make every brain look significant whatever
the test (also measured in ``docs/calibration.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from spatiomol.reports.tables import LOWER_IS_BETTER

#: default significance level of the verdict
ALPHA = 0.05
#: columns that identify one verdict of a tidy results table
VERDICT_KEYS = ("dataset", "split_type", "model")


def min_nulls(alpha: float = ALPHA) -> int:
    """Smallest number of nulls ``K`` with which `rank_test` can reach ``p ≤ alpha`` (``1/(K+1) ≤ alpha``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    # round away the float error of 1/alpha (1/0.05 - 1 is 19, not 19.000000000000004)
    return max(1, math.ceil(round(1.0 / alpha - 1.0, 9)))


def _null_means(null_scores: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """(K,) mean finite score of each null that has one."""
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
    return np.asarray(means, dtype=np.float64)


def rank_test(
    true_scores: np.ndarray | Sequence[float],
    null_scores: np.ndarray | Sequence[Sequence[float]],
    *,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
) -> dict[str, float]:
    """Rank of the true brain's mean score among its nulls' mean scores (one-sided).

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
        Level of the verdict ``reject``.

    Returns
    -------
    dict
        ``n_nulls`` (K with a finite score), ``n_splits`` (finite true scores),
        ``true_mean``, ``null_mean``, ``null_sd`` (ddof=1, metric units), ``effect_z``
        (``(true_mean − null_mean) / null_sd``, sign flipped for errors so that positive
        means "better than the nulls"), ``n_as_good`` (nulls scoring at least as well as
        the true brain), ``p`` (``(1 + n_as_good) / (1 + K)``), ``min_p`` (``1/(1+K)``)
        and ``reject`` (1.0 when ``p ≤ alpha``, else 0.0; NaN without scores).

    Raises
    ------
    ValueError
        For a non-finite or out-of-range ``alpha`` or a ``null_scores`` that is not 2-d.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    true = np.asarray(true_scores, dtype=np.float64).ravel()
    true = true[np.isfinite(true)]
    nulls = _null_means(null_scores)
    k = int(nulls.size)
    out = {
        "n_nulls": k,
        "n_splits": int(true.size),
        "true_mean": float(true.mean()) if true.size else float("nan"),
        "null_mean": float(nulls.mean()) if k else float("nan"),
        "null_sd": float(nulls.std(ddof=1)) if k > 1 else float("nan"),
        "effect_z": float("nan"),
        "n_as_good": float("nan"),
        "p": float("nan"),
        "min_p": 1.0 / (1 + k),
        "reject": float("nan"),
    }
    if not true.size or not k:
        return out
    sign = 1.0 if higher_is_better else -1.0
    gap = sign * (out["true_mean"] - nulls)  # > 0: the true brain does better than null k
    if k > 1 and out["null_sd"] > 0:
        out["effect_z"] = sign * (out["true_mean"] - out["null_mean"]) / out["null_sd"]
    as_good = int(np.sum(gap <= 0))
    out["n_as_good"] = as_good
    out["p"] = (1 + as_good) / (1 + k)
    out["reject"] = float(out["p"] <= alpha)
    return out


def true_vs_nulls(
    df: pd.DataFrame,
    metric: str = "pearson",
    stratum: str = "all",
    *,
    alpha: float = ALPHA,
    family: str | None = None,
) -> pd.DataFrame:
    """`rank_test` for each (dataset, split type, model) of a tidy results table.

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
        Level of the ``reject`` column.
    family : str or None
        A column naming the null family of null rows, if the table mixes families: one
        verdict per family, each against the same true rows.

    Returns
    -------
    DataFrame
        One row per (dataset, split_type, model[, family]) with true and null rows, the
        `rank_test` columns plus ``metric`` and ``stratum``.
    """
    keys = list(VERDICT_KEYS)
    needed = {*keys, "input", "null_index", "metric", "stratum", "value"} | ({family} if family else set())
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(f"true_vs_nulls: results table lacks columns {missing}")
    sel = df[(df["metric"] == metric) & (df["stratum"] == stratum)]
    true = sel[sel["input"] == "true"]
    null = sel[sel["input"] == "null"]
    null_keys = [*keys, family] if family else keys
    rows = []
    for key, group in null.groupby(null_keys, sort=False):
        base = dict(zip(null_keys, key))
        mask = np.ones(len(true), dtype=bool)
        for column in keys:
            mask &= (true[column] == base[column]).to_numpy()
        if not mask.any():
            continue
        per_null = [g["value"].to_numpy(dtype=np.float64) for _, g in group.groupby("null_index", sort=True)]
        result = rank_test(
            true.loc[mask, "value"].to_numpy(dtype=np.float64),
            per_null,
            higher_is_better=metric not in LOWER_IS_BETTER,
            alpha=alpha,
        )
        rows.append({**base, "metric": metric, "stratum": stratum, **result})
    return pd.DataFrame(rows)


__all__ = ["ALPHA", "VERDICT_KEYS", "min_nulls", "rank_test", "true_vs_nulls"]
