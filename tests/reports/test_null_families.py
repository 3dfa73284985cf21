"""True input vs several null families: numbers checked against a hand-built tidy table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spatiomol.reports.null_families import (
    consensus,
    consensus_line,
    draw_null_families,
    families_in,
    family_comparisons,
    family_rows,
    plot_null_families,
)
from spatiomol.reports.tables import display

SPLITS = [(r, f) for r in range(3) for f in range(2)]  # 6 paired splits
TRUE = {"cm": np.array([0.60, 0.61, 0.63, 0.62, 0.65, 0.64]), "mlp": np.array([0.70, 0.72, 0.71, 0.69, 0.73, 0.70])}
# differences true − null: all positive (cm: cge, moran; mlp: cge), all negative (mlp: moran), mean 0 (cm: variogram)
NULL = {
    ("cm", "cge"): TRUE["cm"] - np.array([0.10, 0.12, 0.11, 0.09, 0.13, 0.08]),
    ("cm", "moran"): TRUE["cm"] - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]),
    ("cm", "variogram"): TRUE["cm"] - np.array([0.05, -0.04, 0.03, -0.02, 0.01, -0.03]),
    ("mlp", "cge"): TRUE["mlp"] - np.array([0.20, 0.10, 0.15, 0.12, 0.18, 0.11]),
    ("mlp", "moran"): TRUE["mlp"] + np.array([0.02, 0.01, 0.03, 0.04, 0.02, 0.05]),
    ("mlp", "variogram"): np.full(6, np.nan),  # runs that scored nothing
}


def _rows(model, inp, family, values, metric="pearson", null_index=True):
    return [
        {
            "dataset": "d",
            "split_type": "random",
            "model": model,
            "input": inp,
            "null_family": family,
            "repeat": r,
            "fold": f,
            "null_index": r if null_index and inp == "null" else -1,
            "metric": metric,
            "stratum": "all",
            "value": v,
        }
        for (r, f), v in zip(SPLITS, values)
    ]


@pytest.fixture
def tidy():
    rows = []
    for model, values in TRUE.items():
        rows += _rows(model, "true", "", values)
        rows += _rows(model, "permuted", "", values - 0.3)
    for (model, family), values in NULL.items():
        rows += _rows(model, "null", family, values)
    rows += _rows("exp-decay", "true", "", np.linspace(0.2, 0.3, 6))  # no null runs: no comparison
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter


def test_paired_statistics_per_family_match_hand_and_scipy(tidy):
    table = family_comparisons(tidy, families=["cge", "moran", "variogram"])
    assert sorted(zip(table["model"], table["null_family"])) == sorted(NULL)
    for _, group in table.groupby("model"):
        assert list(group["null_family"]) == ["cge", "moran", "variogram"]  # the order asked for
    row = table.set_index(["model", "null_family"])
    for (model, family), null in NULL.items():
        got = row.loc[(model, family)]
        if np.isnan(null).all():
            assert got["n"] == 0 and np.isnan(got["signflip_p"]) and np.isnan(got["signflip_p_bh"])
            continue
        d = TRUE[model] - null
        assert got["n"] == 6
        assert got["mean_a"] == pytest.approx(TRUE[model].mean(), abs=1e-15)
        assert got["mean_b"] == pytest.approx(null.mean(), abs=1e-15)
        assert got["mean_diff"] == pytest.approx(d.mean(), abs=1e-15)
        assert got["sd_diff"] == pytest.approx(np.std(d, ddof=1), abs=1e-15)
        assert got["wilcoxon_p"] == pytest.approx(stats.wilcoxon(TRUE[model], null).pvalue, rel=1e-12)
    # exact sign flips over 2^6 patterns: all-same-sign differences reach p = 2/64; a zero mean gives 1
    for key in [("cm", "cge"), ("cm", "moran"), ("mlp", "cge"), ("mlp", "moran")]:
        assert row.loc[key, "signflip_p"] == pytest.approx(2 / 64, abs=1e-15)
    assert row.loc[("cm", "variogram"), "signflip_p"] == pytest.approx(1.0)
    # Benjamini–Hochberg over the 5 finite p: four at 1/32 → (1/32)·5/4, the largest stays 1
    for key in [("cm", "cge"), ("cm", "moran"), ("mlp", "cge"), ("mlp", "moran")]:
        assert row.loc[key, "signflip_p_bh"] == pytest.approx(5 / 4 / 32, abs=1e-15)
    assert row.loc[("cm", "variogram"), "signflip_p_bh"] == pytest.approx(1.0)
    # beats: better on average and adjusted p ≤ 0.05 (mlp loses to moran: p small, wrong direction)
    assert row["paired_beats"].to_dict() == {
        ("cm", "cge"): True,
        ("cm", "moran"): True,
        ("cm", "variogram"): False,
        ("mlp", "cge"): True,
        ("mlp", "moran"): False,
        ("mlp", "variogram"): False,
    }
    assert "exp-decay" not in set(table["model"])
    # unadjusted at a stricter level: 1/32 > 0.03 beats nothing
    assert not family_comparisons(tidy, alpha=0.03, p_column="signflip_p")["paired_beats"].any()


def test_consensus_lines(tidy):
    table = family_comparisons(tidy)
    lines = consensus(table, families=["cge", "moran", "variogram"]).set_index("model")["line"].to_dict()
    assert lines == {
        "cm": "beats cge, moran; not variogram",
        "mlp": "beats cge; not moran; no data for variogram",
    }
    reordered = consensus(table, families=["variogram", "moran", "cge"]).set_index("model")
    assert reordered.loc["cm", "beaten"] == ["moran", "cge"] and reordered.loc["cm", "not_beaten"] == ["variogram"]
    assert consensus_line([], ["cge", "moran"]) == "beats none; not cge, moran"
    # any per-family verdict works, e.g. the rank test's reject column (NaN: no data)
    verdict = pd.DataFrame(
        {
            "dataset": "d",
            "split_type": "random",
            "model": "cm",
            "null_family": ["cge", "moran", "variogram"],
            "reject": [1.0, 0.0, np.nan],
        }
    )
    assert consensus(verdict, beats="reject")["line"].tolist() == ["beats cge; not moran; no data for variogram"]


def test_errors_are_lower_is_better(tidy):
    mse = pd.DataFrame(_rows("cm", "true", "", np.full(6, 0.02), metric="mse"))
    mse = pd.concat([mse, pd.DataFrame(_rows("cm", "null", "cge", np.linspace(0.03, 0.05, 6), metric="mse"))])
    table = family_comparisons(pd.concat([tidy, mse]), metric="mse")
    assert table["mean_diff"].iloc[0] == pytest.approx(0.02 - 0.04, abs=1e-15) and table["paired_beats"].iloc[0]


def test_family_rows_and_families_in(tidy):
    assert families_in(tidy) and set(families_in(tidy)) == {"cge", "moran", "variogram"}
    assert families_in(tidy, ["variogram", "absent", "cge"])[:2] == ["variogram", "cge"]
    one = family_rows(tidy, "moran")
    assert set(one.loc[one["input"] == "null", "null_family"]) == {"moran"}
    assert len(one) == len(tidy) - 4 * 6  # the null rows of the two other families (two models each) are gone
    assert (one["input"] != "null").sum() == (tidy["input"] != "null").sum()
    with pytest.raises(ValueError, match=r"no null rows of family 'spin'.*'cge'"):
        family_rows(tidy, "spin")
    with pytest.raises(ValueError, match=r"lacks columns \['null_family'\]"):
        family_comparisons(tidy.drop(columns="null_family"))
    twice = pd.concat([tidy, tidy[tidy["input"] == "null"].head(1)])
    with pytest.raises(ValueError, match="more than one run"):
        family_comparisons(twice)


def test_figure_plots_each_familys_null_scores_against_the_true_mean(tidy, tmp_path):
    fig = draw_null_families(tidy, "d", "random", families=["cge", "moran", "variogram"])
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [display("cm"), display("mlp")]
    for ax, model in zip(panels, ["cm", "mlp"]):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["cge", "moran", "variogram"]
        points = {c.get_gid(): c.get_offsets() for c in ax.collections if c.get_gid()}
        expected = {f: v for (m, f), v in NULL.items() if m == model and np.isfinite(v).any()}
        assert set(points) == set(expected)
        for x, family in enumerate(["cge", "moran", "variogram"]):
            if family in expected:
                np.testing.assert_allclose(points[family][:, 1], expected[family], rtol=0, atol=1e-15)
                assert points[family][:, 0].mean() == pytest.approx(x)
        (line,) = [ln for ln in ax.lines if ln.get_gid() == "true"]
        assert np.allclose(line.get_ydata(), TRUE[model].mean())
    path = plot_null_families(tidy, "d", "random", tmp_path / "families.png")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="no null rows of 'd' / 'spatial'"):
        draw_null_families(tidy, "d", "spatial")
