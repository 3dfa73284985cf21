"""Each expression model vs the anatomy baseline: the paired table and its report section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import stats
from spatiomol.reports.context import slug
from spatiomol.reports.report import write_report

DATASET = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=3"


def _frame(values: dict[str, list[float]], split_type: str = "random") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": model,
                "split_type": split_type,
                "input": "true",
                "repeat": 0,
                "fold": k,
                "metric": "pearson",
                "stratum": "all",
                "value": v,
            }
            for model, vals in values.items()
            for k, v in enumerate(vals)
        ]
    )


def test_versus_anatomy_compares_expression_models_only():
    cm = [0.60, 0.62, 0.58, 0.65]
    anatomy = [0.50, 0.55, 0.52, 0.51]
    df = _frame({"cm": cm, "mlp": [0.7] * 4, "exp-decay": [0.9] * 4, "mlp-coords-only": [0.8] * 4, "anatomy": anatomy})
    res = stats.versus_anatomy(df).set_index("model")
    assert set(res.index) == {"cm", "mlp"} and (res["reference"] == "anatomy").all()
    expected = stats.paired_test(np.array(cm), np.array(anatomy))
    for key in ("mean_diff", "sd_diff", "wilcoxon_p", "signflip_p", "effect_dz"):
        assert res.loc["cm", key] == pytest.approx(expected[key])
    assert res.loc["cm", "signflip_p"] == pytest.approx(2 / 16)  # all four differences positive
    # no anatomy runs (or on another split type only): no table
    assert stats.versus_anatomy(df[df["model"] != "anatomy"]).empty


def test_versus_anatomy_pairs_only_shared_splits():
    df = _frame({"cm": [0.6, 0.7, 0.8, 0.9], "anatomy": [0.5, 0.5, np.nan, 0.5]})
    res = stats.versus_anatomy(df)
    assert res["n"].iloc[0] == 3
    assert res["mean_diff"].iloc[0] == pytest.approx(np.mean([0.1, 0.2, 0.4]))


def test_report_has_the_anatomy_table(tmp_path):
    config = ExperimentConfig(
        name="anatomy-report",
        datasets=[DATASET],
        models=["anatomy", "cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
        seed=1,
    )
    results = tmp_path / "results"
    assert not run_experiment(config, results, progress=False, log=lambda m: None).failed
    text = write_report(results, tmp_path / "report", n_permutations=500, html=False, brain_views=False).read_text()
    assert "Each expression model vs the anatomy baseline" in text
    assert "Anatomy baseline (no expression)" in text  # its Table 1 row and the table's explanation
    table = pd.read_csv(tmp_path / "report" / "tables" / f"stats_vs_anatomy_{slug(DATASET)}.csv")
    assert list(table["model"]) == ["cm"] and list(table["reference"]) == ["anatomy"]
    rows = ResultsStore(results).load()
    pearson = rows[(rows["metric"] == "pearson") & (rows["stratum"] == "all")]
    per_model = pearson.pivot_table(index="fold", columns="model", values="value")
    assert table["n"].iloc[0] == 4
    assert table["mean_diff"].iloc[0] == pytest.approx((per_model["cm"] - per_model["anatomy"]).mean())
