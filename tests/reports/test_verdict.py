"""The rank verdict against hand-worked cases, planted signals and exchangeable simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from spatiomol.reports import stats, verdict


def test_min_nulls_is_the_smallest_count_reaching_alpha():
    assert verdict.min_nulls(0.05) == 19
    assert verdict.min_nulls(0.01) == 99
    assert verdict.min_nulls(0.1) == 9
    for alpha in (0.05, 0.01, 0.1, 0.03):
        k = verdict.min_nulls(alpha)
        assert 1 / (k + 1) <= alpha + 1e-12 < 1 / k
    with pytest.raises(ValueError, match="alpha"):
        verdict.min_nulls(0.0)


def test_rank_test_hand_worked_case():
    # true mean 0.5; null means 0.1, 0.6, 0.5 (a tie counts against the true brain), 0.2 → 2 as good → 3/5
    true = [0.4, 0.6]
    nulls = [[0.1, 0.1], [0.6, 0.6], [0.5], [0.3, 0.1, np.nan]]
    res = verdict.rank_test(true, nulls)
    assert res["n_nulls"] == 4 and res["n_splits"] == 2
    assert res["n_as_good"] == 2 and res["p"] == pytest.approx(3 / 5) and res["reject"] == 0.0
    assert res["null_mean"] == pytest.approx(np.mean([0.1, 0.6, 0.5, 0.2]))
    assert res["null_sd"] == pytest.approx(np.std([0.1, 0.6, 0.5, 0.2], ddof=1))
    assert res["min_p"] == pytest.approx(1 / 5)
    # errors: lower is better, so the same numbers put 0.1 and 0.2 at least as good as 0.5 → 3 as good
    res = verdict.rank_test(true, nulls, higher_is_better=False)
    assert res["n_as_good"] == 3 and res["p"] == pytest.approx(4 / 5)
    assert res["effect_z"] == pytest.approx(-(0.5 - 0.35) / np.std([0.1, 0.6, 0.5, 0.2], ddof=1))


def test_rank_test_rejects_a_planted_signal_only_with_enough_nulls():
    rng = np.random.default_rng(0)
    true = 0.6 + 0.01 * rng.standard_normal(40)
    for k, expected in ((19, 1 / 20), (39, 1 / 40)):
        nulls = 0.4 + 0.02 * rng.standard_normal((k, 4))
        res = verdict.rank_test(true, nulls)
        assert res["p"] == pytest.approx(expected) and res["reject"] == 1.0
        assert res["effect_z"] > 5
    # nine nulls cannot reach 0.05 however strong the signal
    res = verdict.rank_test(true, 0.4 + 0.02 * rng.standard_normal((9, 4)))
    assert res["p"] == pytest.approx(0.1) and res["reject"] == 0.0


def _exchangeable_draws(rng, n_draws: int, k: int, shared_splits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Brain effects (K + 1 exchangeable brains) + split effects + noise; row 0 is the "true" brain.

    Shared splits: every brain on the same 4 splits. Otherwise (the runner's one null per
    repeat) brain k is scored on its own repeat of 4 folds and the true brain on 20 repeats.
    """
    brain = rng.standard_normal((n_draws, k + 1, 1))
    if shared_splits:
        split = rng.standard_normal((n_draws, 1, 4))
        scores = brain + split + 0.5 * rng.standard_normal((n_draws, k + 1, 4))
        return scores[:, 0], scores[:, 1:]
    true = brain[:, 0] + rng.standard_normal((n_draws, 80)) + 0.5 * rng.standard_normal((n_draws, 80))
    nulls = brain[:, 1:] + rng.standard_normal((n_draws, k, 4)) + 0.5 * rng.standard_normal((n_draws, k, 4))
    return true, nulls


def test_rank_test_p_values_are_uniform_when_true_and_nulls_are_exchangeable():
    rng = np.random.default_rng(1)
    k, n_draws = 19, 3000
    true, nulls = _exchangeable_draws(rng, n_draws, k, shared_splits=True)
    p = np.array([verdict.rank_test(t, n)["p"] for t, n in zip(true, nulls)])
    # p is uniform on {1/20, ..., 1}; subtracting U/(K+1) makes it continuous uniform on (0, 1)
    randomized = p - rng.uniform(size=n_draws) / (k + 1)
    assert sps.kstest(randomized, "uniform").pvalue > 0.01
    rejections = int(np.sum(p <= 0.05))
    assert sps.binomtest(rejections, n_draws, 0.05).pvalue > 0.01


def test_one_null_per_repeat_is_conservative_where_the_paired_test_is_not():
    rng = np.random.default_rng(2)
    k, n_draws = 20, 400
    true, nulls = _exchangeable_draws(rng, n_draws, k, shared_splits=False)
    p = np.array([verdict.rank_test(t, n)["p"] for t, n in zip(true, nulls)])
    rejections = int(np.sum(p <= 0.05))
    assert sps.binomtest(rejections, n_draws, 0.05, alternative="greater").pvalue > 0.05
    # the paired test on the same kind of draws (first 10 repeats, null r on repeat r) calls the
    # true brain better than its nulls far more often than 5%: its splits are not replicates
    paired = [stats.paired_test(t[:40], n[:10].ravel(), n_permutations=2000) for t, n in zip(true[:200], nulls[:200])]
    false_positives = np.mean([r["signflip_p"] < 0.05 and r["mean_diff"] > 0 for r in paired])
    assert false_positives > 0.2


def _tidy(true: dict, null: dict) -> pd.DataFrame:
    rows = []
    for model, values in true.items():
        for s, value in enumerate(values):
            rows.append((model, "true", s // 4, s % 4, -1, value, "cge"))
    for (model, family), nulls in null.items():
        for k, values in enumerate(nulls):
            for f, value in enumerate(values):
                rows.append((model, "null", k, f, k, value, family))
    df = pd.DataFrame(rows, columns=["model", "input", "repeat", "fold", "null_index", "value", "family"])
    return df.assign(dataset="d", split_type="random", metric="pearson", stratum="all")


def test_true_vs_nulls_on_a_results_table_matches_rank_test():
    rng = np.random.default_rng(3)
    true = {"cm": 0.6 + 0.01 * rng.standard_normal(80), "cge-pca": 0.3 + 0.05 * rng.standard_normal(80)}
    null = {
        ("cm", "cge"): 0.4 + 0.02 * rng.standard_normal((20, 4)),
        ("cm", "moran"): 0.55 + 0.05 * rng.standard_normal((20, 4)),
        ("cge-pca", "cge"): 0.3 + 0.05 * rng.standard_normal((20, 4)),
    }
    df = _tidy(true, null)
    out = verdict.true_vs_nulls(df, family="family").set_index(["model", "family"])
    assert len(out) == 3
    for (model, family), nulls in null.items():
        expected = verdict.rank_test(true[model], nulls)
        row = out.loc[(model, family)]
        assert row["p"] == pytest.approx(expected["p"]) and row["n_nulls"] == 20
        assert row["true_mean"] == pytest.approx(true[model].mean())
    assert out.loc[("cm", "cge"), "reject"] == 1.0
    # a table without null_index cannot tell the nulls apart
    with pytest.raises(ValueError, match="lacks columns"):
        verdict.true_vs_nulls(df.drop(columns="null_index"))
    # a lower-is-better metric compares the other way
    errors = df.assign(metric="mse", value=-df["value"])
    flipped = verdict.true_vs_nulls(errors, metric="mse", family="family").set_index(["model", "family"])
    assert flipped.loc[("cm", "cge"), "p"] == pytest.approx(out.loc[("cm", "cge"), "p"])


def test_rank_test_input_checks():
    with pytest.raises(ValueError, match="2-d"):
        verdict.rank_test([0.5], np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="alpha"):
        verdict.rank_test([0.5], [[0.1]], alpha=1.5)
    empty = verdict.rank_test([np.nan], [[0.1]])
    assert empty["n_splits"] == 0 and np.isnan(empty["p"])
