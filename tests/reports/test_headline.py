"""The report's headline: its numbers equal an independent recomputation of the stored rows,
and every verdict sentence names what its nulls keep and what they leave open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.nulls import FAMILIES
from spatiomol.reports.report import write_report

DATASET = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=5"
SLUG = "synthetic_n_regions_40_n_genes_30_rule_b"
K = 9


@pytest.fixture(scope="module")
def headline(tmp_path_factory):
    out = tmp_path_factory.mktemp("headline")
    config = ExperimentConfig(
        name="headline-test",
        datasets=[DATASET],
        models=["cm", "anatomy"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true", "null"],
        tuning=False,
        seed=2,
        nulls=[{"n": K, "top": K, "method": "moran", "seed": 0}, {"n": K, "top": K, "method": "anatomical", "seed": 0}],
    )
    assert not run_experiment(config, out, progress=False).failed
    path = write_report(out, out / "report", n_permutations=200, html=False, brain_views=False)
    table = pd.read_csv(out / "report" / "tables" / f"headline_{SLUG}.csv")
    return ResultsStore(out).load(), path.read_text(), table


def _values(df, **where):
    sel = df[(df["metric"] == "pearson") & (df["stratum"] == "all")]
    for key, value in where.items():
        sel = sel[sel[key] == value]
    return sel


def test_headline_opens_the_dataset_and_its_numbers_are_the_stored_rows(headline):
    df, text, table = headline
    assert text.index("Headline:") < text.index("Table 1")
    true = _values(df, model="cm", input="true").sort_values(["repeat", "fold"])["value"].to_numpy()
    assert len(table) == 2  # cm × random × two families
    for _, row in table.iterrows():
        nulls = _values(df, model="cm", input="null", null_family=row["null_family"])
        means = nulls.groupby("null_index")["value"].mean().to_numpy()
        assert len(means) == K and (nulls.groupby("null_index").size() == 4).all()  # shared folds
        assert row["effect"] == pytest.approx(true.mean() - means.mean(), abs=1e-12)
        assert row["p"] == pytest.approx((1 + np.sum(means >= true.mean())) / (1 + K))
        assert row["effect_z"] == pytest.approx((true.mean() - means.mean()) / means.std(ddof=1))
    # Holm over the family's m = 1 verdict is the p itself
    np.testing.assert_allclose(table["p_holm"], table["p"])


def test_each_sentence_names_what_its_nulls_keep_and_leave_open(headline):
    _, text, table = headline
    sentences = dict(zip(table["method"], table["sentence"]))
    assert "nulls that keep spatial autocorrelation and gene-gene covariance" in sentences["moran"]
    assert (
        "Not ruled out by these nulls: the structure contrast, hemispheric homotopy and each gene's values"
        in (sentences["moran"])
    )
    assert sentences["moran"].endswith("**Its family is not calibrated.**")
    assert sentences["anatomical"].endswith("Its family is calibrated.")
    for method in ("moran", "anatomical"):
        assert f"Calibration of `{method}(n={K},top={K})`: {FAMILIES[method].calibration}." in text
    assert (
        "nulls that keep spatial autocorrelation, gene-gene covariance, the structure contrast, hemispheric "
        "homotopy and each gene's values" in sentences["anatomical"]
    )
    for sentence in sentences.values():
        assert sentence in text
        assert f"K = {K} nulls" in sentence
    # K = 9 cannot reach p ≤ 0.05: the headline says so for each family
    head = text[text.index("Headline:") : text.index("Table 1")]
    assert head.count("no verdict can reject") == 2
    keeps = text[text.index("What each null family keeps") :]
    assert "| moran" in keeps and "| anatomical" in keeps


def test_gap_to_the_anatomy_baseline_is_the_paired_mean_difference(headline):
    df, text, _ = headline
    cm = _values(df, model="cm", input="true").set_index(["repeat", "fold"])["value"]
    anatomy = _values(df, model="anatomy", input="true").set_index(["repeat", "fold"])["value"]
    diff = (cm - anatomy.reindex(cm.index)).mean()
    assert f"vs the anatomy baseline: Δr = {diff:+.3f}" in text
