"""The rank verdict against hand-worked cases, independent references, planted signals and simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from spatiomol.reports import stats, verdict

#: t(0.975, 3) from a printed table of Student's t quantiles (3.182), to more digits
T_975_3 = 3.18244630528


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
    assert res["n_nulls"] == 4 and res["n_splits"] == 2 and res["n_nulls_dropped"] == 0
    assert res["n_as_good"] == 2 and res["p"] == pytest.approx(3 / 5) and res["reject"] == 0.0
    # by hand: null mean 0.35; deviations ±0.25, ±0.15 → SD = sqrt(0.17 / 3)
    sd = np.sqrt(0.17 / 3)
    assert res["null_mean"] == pytest.approx(0.35) and res["null_sd"] == pytest.approx(sd)
    assert res["min_p"] == pytest.approx(1 / 5)
    assert res["effect"] == pytest.approx(0.15) and res["effect_z"] == pytest.approx(0.15 / sd)
    half = T_975_3 * sd / 2  # t(0.975, K − 1) · SD / √K with K = 4
    assert res["effect_low"] == pytest.approx(0.15 - half, abs=1e-9)
    assert res["effect_high"] == pytest.approx(0.15 + half, abs=1e-9)
    assert (res["effect_low"], res["effect_high"]) == pytest.approx((-0.228787, 0.528787), abs=1e-6)
    # errors: lower is better, so the same numbers put 0.1 and 0.2 at least as good as 0.5 → 3 as good
    res = verdict.rank_test(true, nulls, higher_is_better=False)
    assert res["n_as_good"] == 3 and res["p"] == pytest.approx(4 / 5)
    assert res["effect"] == pytest.approx(-0.15) and res["effect_z"] == pytest.approx(-0.15 / sd)
    assert (res["effect_low"], res["effect_high"]) == pytest.approx((-0.15 - half, -0.15 + half), abs=1e-9)


def test_rank_test_rejects_a_planted_signal_only_with_enough_nulls():
    rng = np.random.default_rng(0)
    true = 0.6 + 0.01 * rng.standard_normal(40)
    for k, expected in ((19, 1 / 20), (39, 1 / 40), (99, 1 / 100)):
        nulls = 0.4 + 0.02 * rng.standard_normal((k, 4))
        res = verdict.rank_test(true, nulls)
        assert res["p"] == pytest.approx(expected) and res["reject"] == 1.0
        assert res["effect_z"] > 5 and res["effect_low"] > 0
    # nine nulls cannot reach 0.05 however strong the signal
    res = verdict.rank_test(true, 0.4 + 0.02 * rng.standard_normal((9, 4)))
    assert res["p"] == pytest.approx(0.1) and res["reject"] == 0.0


# ------------------------------------------------------------------ multiplicity
def test_adjust_p_holm_hand_worked():
    # m = 4 finite p: sorted 0.005, 0.01, 0.03, 0.04 → × 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 → running max
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    holm = verdict.adjust_p(p, "holm")
    np.testing.assert_allclose(holm[:4], [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert np.isnan(holm[4])
    # capped at 1; one p is its own family
    np.testing.assert_allclose(verdict.adjust_p([0.4, 0.5], "holm"), [0.8, 0.8])
    np.testing.assert_allclose(verdict.adjust_p([0.3], "holm"), [0.3])
    assert np.isnan(verdict.adjust_p([np.nan, np.nan], "bh")).all()


def test_adjust_p_bh_matches_scipy():
    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 40):
        p = np.concatenate([rng.uniform(size=size) ** 3, [np.nan, np.nan]])
        rng.shuffle(p)
        ours = verdict.adjust_p(p, "bh")
        finite = np.isfinite(p)
        np.testing.assert_allclose(ours[finite], sps.false_discovery_control(p[finite], method="bh"), rtol=1e-12)
        assert np.isnan(ours[~finite]).all()  # NaN stays NaN and does not count in m


def test_adjust_p_input_checks():
    with pytest.raises(ValueError, match="method must be one of"):
        verdict.adjust_p([0.1], "bonferroni")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        verdict.adjust_p([0.1, 1.5], "holm")


# ------------------------------------------------------------------ calibration
def _shared_fold_draws(rng, n_draws: int, k: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """True brain and K nulls on the same 4 splits: shared split noise + each brain's own noise.

    The brain effect (one draw per brain, common to its splits) makes the K + 1 scores
    exchangeable draws of "a brain"; ``effect`` shifts the true brain only.
    """
    split = rng.standard_normal((n_draws, 1, 4))
    brain = rng.standard_normal((n_draws, k + 1, 1))
    scores = brain + split + 0.5 * rng.standard_normal((n_draws, k + 1, 4))
    scores[:, 0] += effect
    return scores[:, 0], scores[:, 1:]


def test_shared_fold_rank_test_is_calibrated_and_has_power():
    rng = np.random.default_rng(1)
    k, n_draws = 19, 3000
    true, nulls = _shared_fold_draws(rng, n_draws, k)
    p = np.array([verdict.rank_test(t, n)["p"] for t, n in zip(true, nulls)])
    # under exchangeability p is uniform on {1/20, ..., 1}: P(p ≤ 0.05) = 1/20 exactly
    rejections = int(np.sum(p <= 0.05))
    low, high = sps.binom.interval(0.999, n_draws, 0.05)
    assert low <= rejections <= high
    # subtracting U/(K+1) makes the discrete uniform continuous uniform on (0, 1)
    randomized = p - rng.uniform(size=n_draws) / (k + 1)
    assert sps.kstest(randomized, "uniform").pvalue > 0.001
    # a planted effect (one SD of a brain) rejects far more often
    true, nulls = _shared_fold_draws(rng, n_draws, k, effect=1.5)
    planted = np.mean([verdict.rank_test(t, n)["p"] <= 0.05 for t, n in zip(true, nulls)])
    assert planted > high / n_draws and planted > 0.3


def test_effect_interval_covers_the_mean_of_infinitely_many_nulls_on_these_splits():
    """The CI is the Monte Carlo error of the mean null with the true score and the splits fixed."""
    rng = np.random.default_rng(5)
    k, n_draws, mu, sd = 19, 4000, 0.3, 0.05
    true = np.full(4, 0.42)
    null = mu + sd * rng.standard_normal((n_draws, k, 1)) + np.zeros((1, 1, 4))
    covered = 0
    for n in null:
        res = verdict.rank_test(true, n)
        covered += res["effect_low"] <= 0.42 - mu <= res["effect_high"]
    low, high = sps.binom.interval(0.999, n_draws, 0.95)
    assert low <= covered <= high


def test_one_null_per_repeat_is_conservative_where_the_paired_test_is_not():
    """The legacy design: null k on its own repeat, the true brain on 20 repeats."""
    rng = np.random.default_rng(2)
    k, n_draws = 20, 400
    brain = rng.standard_normal((n_draws, k + 1, 1))
    true = brain[:, 0] + rng.standard_normal((n_draws, 80)) + 0.5 * rng.standard_normal((n_draws, 80))
    nulls = brain[:, 1:] + rng.standard_normal((n_draws, k, 4)) + 0.5 * rng.standard_normal((n_draws, k, 4))
    p = np.array([verdict.rank_test(t, n)["p"] for t, n in zip(true, nulls)])
    rejections = int(np.sum(p <= 0.05))
    assert sps.binomtest(rejections, n_draws, 0.05, alternative="greater").pvalue > 0.05
    # the paired test on the same kind of draws (first 10 repeats, null r on repeat r) calls the
    # true brain better than its nulls far more often than 5%: its splits are not replicates
    paired = [stats.paired_test(t[:40], n[:10].ravel(), n_permutations=2000) for t, n in zip(true[:200], nulls[:200])]
    false_positives = np.mean([r["signflip_p"] < 0.05 and r["mean_diff"] > 0 for r in paired])
    assert false_positives > 0.2


# ------------------------------------------------------------------ results tables
COLUMNS = ["dataset", "model", "split_type", "input", "repeat", "fold", "null_index", "value", "family"]


def _shared_table(true: dict, null: dict, dataset: str = "d", repeats: int = 1, folds: int = 4) -> pd.DataFrame:
    """Tidy rows: true[(model, split)] one value per split; null[(model, split, family)] (K, splits)."""
    rows = []
    for (model, split), values in true.items():
        for s, value in enumerate(values):
            rows.append((dataset, model, split, "true", s // folds, s % folds, -1, value, ""))
    for (model, split, family), scores in null.items():
        for k, values in enumerate(scores):
            for s, value in enumerate(values):
                rows.append((dataset, model, split, "null", s // folds, s % folds, k, value, family))
    return pd.DataFrame(rows, columns=COLUMNS).assign(metric="pearson", stratum="all")


def test_true_vs_nulls_on_shared_folds_hand_worked():
    # 2 splits; true 0.5, 0.7 (mean 0.6); nulls on both splits: means 0.3, 0.65, 0.6 (tie), 0.2
    true = {("cm", "random"): [0.5, 0.7]}
    null = {("cm", "random", "moran"): [[0.2, 0.4], [0.6, 0.7], [0.6, 0.6], [0.1, 0.3]]}
    df = _shared_table(true, null, folds=2)
    # a fifth null missing split 1 (a failed run) is dropped, a sixth with NaN there too
    extra = pd.DataFrame(
        [("d", "cm", "random", "null", 0, 0, 4, 0.9, "moran"), ("d", "cm", "random", "null", 0, 0, 5, 0.9, "moran")]
        + [("d", "cm", "random", "null", 0, 1, 5, np.nan, "moran")],
        columns=COLUMNS,
    ).assign(metric="pearson", stratum="all")
    out = verdict.true_vs_nulls(pd.concat([df, extra]), family="family")
    (row,) = out.to_dict("records")
    assert row["design"] == verdict.SHARED_FOLDS == "shared folds"
    assert (row["n_nulls"], row["n_nulls_dropped"], row["n_splits"]) == (4, 2, 2)
    assert row["true_mean"] == pytest.approx(0.6)
    # Phipson–Smyth: nulls at least as good as 0.6 are 0.65 and 0.6 → (1 + 2) / (1 + 4)
    assert row["n_as_good"] == 2 and row["p"] == pytest.approx(3 / 5) and row["min_p"] == pytest.approx(1 / 5)
    means = np.array([0.3, 0.65, 0.6, 0.2])
    sd = np.sqrt(np.sum((means - 0.4375) ** 2) / 3)
    assert row["null_mean"] == pytest.approx(0.4375) and row["null_sd"] == pytest.approx(sd)
    assert row["effect"] == pytest.approx(0.1625) and row["effect_z"] == pytest.approx(0.1625 / sd)
    assert row["effect_high"] - row["effect"] == pytest.approx(T_975_3 * sd / 2, abs=1e-9)
    # one row in its (dataset, family): Holm and BH leave p as is
    assert row["p_holm"] == pytest.approx(0.6) and row["p_bh"] == pytest.approx(0.6) and row["reject"] == 0.0


def test_shared_splits_are_the_nulls_common_set_of_true_splits():
    # true on 4 splits; the nulls were scored on the first 3 (the 4th not yet run): S = 3 splits
    true = {("cm", "random"): [0.5, 0.7, 0.6, 0.9]}
    null = {("cm", "random", "moran"): np.array([[0.1, 0.2, 0.3, np.nan], [0.2, 0.3, 0.4, np.nan]])}
    out = verdict.true_vs_nulls(_shared_table(true, null), family="family").iloc[0]
    assert out["n_splits"] == 3 and out["true_mean"] == pytest.approx(0.6) and out["n_nulls_dropped"] == 0
    assert out["null_mean"] == pytest.approx(0.25)


def test_holm_and_bh_across_the_models_and_split_types_of_a_dataset_and_family():
    rng = np.random.default_rng(3)
    k = 19
    true, null = {}, {}
    for model, gap in (("cm", 0.3), ("cge-pca", 0.0), ("cm-pca", 0.0)):
        for split in ("random", "spatial"):
            true[(model, split)] = 0.4 + gap + 0.01 * rng.standard_normal(4)
            for family in ("moran", "cge"):
                null[(model, split, family)] = 0.4 + 0.02 * rng.standard_normal((k, 4))
    true[("mlp", "random")] = [np.nan] * 4  # no true score: p NaN, outside the family
    null[("mlp", "random", "moran")] = 0.4 + 0.02 * rng.standard_normal((k, 4))
    df = pd.concat([_shared_table(true, null), _shared_table(true, null, dataset="e")])
    out = verdict.true_vs_nulls(df, family="family")
    assert len(out) == 2 * (6 * 2 + 1) and set(out["design"]) == {verdict.SHARED_FOLDS}
    for (_, _), group in out.groupby(["dataset", "family"]):
        p = group["p"].to_numpy()
        finite = np.isfinite(p)
        assert finite.sum() == 6  # 3 models × 2 split types
        np.testing.assert_allclose(group["p_holm"].to_numpy()[finite], verdict.adjust_p(p[finite], "holm"))
        np.testing.assert_allclose(
            group["p_bh"].to_numpy()[finite], sps.false_discovery_control(p[finite], method="bh"), rtol=1e-12
        )
        assert group.loc[~finite, ["p_holm", "p_bh", "reject"]].isna().all().all()
        np.testing.assert_array_equal(group["reject"].to_numpy()[finite], group["p_holm"].to_numpy()[finite] <= 0.05)
    # cm beats every null (p = 1/20 in both split types), yet 6 tests make its smallest Holm p 6/20
    cm = out[out["model"] == "cm"]
    assert np.allclose(cm["p"], 1 / 20) and (cm["p_holm"] >= 6 / 20 - 1e-12).all() and (cm["reject"] == 0).all()
    assert (cm["effect_low"] > 0.2).all()


def _legacy_table(true: dict, null: dict) -> pd.DataFrame:
    """The earlier grid: true on every split, null k on the folds of repeat k only."""
    rows = []
    for model, values in true.items():
        for s, value in enumerate(values):
            rows.append(("d", model, "random", "true", s // 4, s % 4, -1, value, "cge"))
    for (model, family), nulls in null.items():
        for k, values in enumerate(nulls):
            for f, value in enumerate(values):
                rows.append(("d", model, "random", "null", k, f, k, value, family))
    return pd.DataFrame(rows, columns=COLUMNS).assign(metric="pearson", stratum="all")


def test_a_legacy_folder_still_gets_its_verdict_computed_the_old_way():
    rng = np.random.default_rng(3)
    true = {"cm": 0.6 + 0.01 * rng.standard_normal(80), "cge-pca": 0.3 + 0.05 * rng.standard_normal(80)}
    null = {
        ("cm", "cge"): 0.4 + 0.02 * rng.standard_normal((20, 4)),
        ("cm", "moran"): 0.55 + 0.05 * rng.standard_normal((20, 4)),
        ("cge-pca", "cge"): 0.3 + 0.05 * rng.standard_normal((20, 4)),
    }
    df = _legacy_table(true, null)
    out = verdict.true_vs_nulls(df, family="family").set_index(["model", "family"])
    assert len(out) == 3 and set(out["design"]) == {verdict.LEGACY_DESIGN} == {"one null per repeat (legacy)"}
    for (model, family), nulls in null.items():
        expected = verdict.rank_test(true[model], nulls)  # all 80 true splits against each null's own 4
        row = out.loc[(model, family)]
        assert row["p"] == pytest.approx(expected["p"]) and row["n_nulls"] == 20 and row["n_splits"] == 80
        assert row["true_mean"] == pytest.approx(true[model].mean())
        assert row["effect"] == pytest.approx(expected["effect"])
    assert out.loc[("cm", "cge"), "p"] == pytest.approx(1 / 21)
    # Holm over the 2 rows of family cge: 2/21 > 0.05
    assert out.loc[("cm", "cge"), "p_holm"] == pytest.approx(2 / 21) and out.loc[("cm", "cge"), "reject"] == 0.0
    # one null only: both designs coincide, so it is read as shared folds
    single = _legacy_table({"cm": true["cm"][:4]}, {("cm", "cge"): null[("cm", "cge")][:1]})
    assert verdict.true_vs_nulls(single)["design"].tolist() == [verdict.SHARED_FOLDS]
    # a table without null_index cannot tell the nulls apart
    with pytest.raises(ValueError, match="lacks columns"):
        verdict.true_vs_nulls(df.drop(columns="null_index"))
    # a lower-is-better metric compares the other way
    errors = df.assign(metric="mse", value=-df["value"])
    flipped = verdict.true_vs_nulls(errors, metric="mse", family="family").set_index(["model", "family"])
    assert flipped.loc[("cm", "cge"), "p"] == pytest.approx(out.loc[("cm", "cge"), "p"])
    assert flipped.loc[("cm", "cge"), "effect"] == pytest.approx(out.loc[("cm", "cge"), "effect"])


def test_shared_folds_table_matches_rank_test_on_the_aligned_arrays():
    rng = np.random.default_rng(6)
    true_scores, null_scores = _shared_fold_draws(rng, 30, 19)
    true = {(f"m{d}", "random"): true_scores[d] for d in range(30)}
    null = {(f"m{d}", "random", "moran"): null_scores[d] for d in range(30)}
    out = verdict.true_vs_nulls(_shared_table(true, null), family="family").set_index("model")
    for d in range(30):
        expected = verdict.rank_test(true_scores[d], null_scores[d])
        for column in ("p", "effect", "effect_z", "effect_low", "effect_high", "n_nulls", "n_splits"):
            assert out.loc[f"m{d}", column] == pytest.approx(expected[column])


def test_rank_test_input_checks():
    with pytest.raises(ValueError, match="2-d"):
        verdict.rank_test([0.5], np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="alpha"):
        verdict.rank_test([0.5], [[0.1]], alpha=1.5)
    empty = verdict.rank_test([np.nan], [[0.1]])
    assert empty["n_splits"] == 0 and np.isnan(empty["p"]) and np.isnan(empty["effect"])
    one = verdict.rank_test([0.5], [[0.1]])
    assert one["effect"] == pytest.approx(0.4) and np.isnan(one["effect_low"]) and np.isnan(one["effect_z"])
    assert verdict.rank_test([0.5], [[np.nan], [0.2]])["n_nulls_dropped"] == 1
