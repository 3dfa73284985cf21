"""Paired tests against hand-worked cases and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from spatiomol.reports import stats


def test_sign_flip_hand_worked_cases():
    # d = (1, 2, 3): the 8 sign patterns give sums ±6, ±4, ±2, 0, 0; |mean| >= 2 only for ±6 → 2/8
    assert stats.sign_flip_pvalue(np.array([1.0, 2.0, 3.0])) == 0.25
    # d = (1, -1): mean 0, every pattern is at least as extreme
    assert stats.sign_flip_pvalue(np.array([1.0, -1.0])) == 1.0
    # d = (2, 2, 2, 2): only the two constant-sign patterns reach |mean| = 2 → 2/16
    assert stats.sign_flip_pvalue(np.full(4, 2.0)) == 0.125


def test_sign_flip_monte_carlo_agrees_with_exact_enumeration():
    d = np.random.default_rng(0).normal(0.3, 1.0, size=14)
    exact = stats.sign_flip_pvalue(d, n_permutations=2**14)
    brute = np.mean([abs(np.dot(s, d)) >= abs(d.sum()) - 1e-12 for s in itertools.product((1, -1), repeat=14)])
    assert exact == pytest.approx(brute, abs=1e-15)
    mc = stats.sign_flip_pvalue(d, n_permutations=4000, seed=1)
    assert mc == pytest.approx(exact, abs=3 * np.sqrt(exact * (1 - exact) / 4000) + 1e-3)
    assert mc == stats.sign_flip_pvalue(d, n_permutations=4000, seed=1)  # seeded


def test_paired_test_matches_scipy_and_hand_effect_sizes():
    a = np.array([0.80, 0.75, 0.90, 0.70, 0.85])
    b = np.array([0.50, 0.78, 0.60, 0.40, 0.55])
    res = stats.paired_test(a, b)
    d = a - b  # (0.30, -0.03, 0.30, 0.30, 0.30); |d| ranks: 1 for 0.03, 3.5 for the four ties
    assert res["rank_biserial"] == pytest.approx((14 - 1) / 15)
    assert res["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    ref = sps.wilcoxon(d)
    assert res["wilcoxon_stat"] == pytest.approx(ref.statistic) and res["wilcoxon_p"] == pytest.approx(ref.pvalue)
    # |sum| >= 1.17 needs all four 0.30s of one sign, the 0.03 either way: 4 of 32 patterns
    assert res["signflip_p"] == pytest.approx(4 / 32)
    with pytest.raises(ValueError, match="equal length"):
        stats.paired_test(a, b[:3])


def _frame(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = []
    for (model, inp), vals in values.items():
        for k, v in enumerate(vals):
            rows.append(
                {
                    "dataset": "d",
                    "model": model,
                    "split_type": "random",
                    "input": inp,
                    "repeat": k // 4,
                    "fold": k % 4,
                    "metric": "pearson",
                    "stratum": "all",
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


def test_true_vs_null_pairs_by_split_not_by_row_order():
    rng = np.random.default_rng(3)
    true = rng.uniform(0.5, 0.9, 8)
    null = true - rng.uniform(0.0, 0.2, 8)
    df = _frame({("cm", "true"): list(true), ("cm", "null"): list(null)}).sample(frac=1.0, random_state=0)
    res = stats.true_vs_null(df)
    assert len(res) == 1
    expected = stats.paired_test(true, null)
    for key in ("mean_diff", "sd_diff", "wilcoxon_p", "signflip_p", "rank_biserial"):
        assert res[key].iloc[0] == pytest.approx(expected[key])


def test_versus_best_linear_picks_highest_mean_linear_model():
    df = _frame(
        {
            ("cm", "true"): [0.5] * 4,
            ("cm-pls", "true"): [0.6, 0.62, 0.61, 0.63],
            ("mlp", "true"): [0.7, 0.71, 0.69, 0.72],
            ("exp-decay", "true"): [0.9] * 4,
        }
    )
    assert stats.best_linear_model(df, "d", "random") == "cm-pls"
    res = stats.versus_best_linear(df).set_index("model")
    assert set(res.index) == {"cm", "mlp", "exp-decay"} and (res["reference"] == "cm-pls").all()
    assert res.loc["mlp", "mean_diff"] == pytest.approx(np.mean([0.1, 0.09, 0.08, 0.09]))
    assert res.loc["mlp", "signflip_p"] == pytest.approx(2 / 16)
    p = res["signflip_p"].to_numpy()
    assert np.allclose(res["signflip_p_bh"], sps.false_discovery_control(p))
