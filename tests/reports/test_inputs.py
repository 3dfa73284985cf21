"""Inputs compared (issue 27): which models the section pairs, and its numbers against an
independent recomputation (numpy / scipy) of the stored rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports.input_sections import architectures, contrast_table, input_contrasts, input_table
from spatiomol.reports.report import write_report

MLP_FAMILY = ["mlp", "mlp-sc", "mlp-expr-sc", "mlp-coords-only", "mlp-coords", "mlp-coords-sc"]


def test_architectures_group_the_models_that_differ_only_in_their_inputs():
    groups = architectures([*MLP_FAMILY, "cm", "cm-sc", "cm-pca", "smt", "smt-cls", "exp-decay"])
    as_sets = sorted(sorted(g) for g in groups)
    # cm-pca reads expression like cm but is another variant; the SMTs differ by the [CLS] token
    assert as_sets == [["cm", "cm-sc"], sorted(MLP_FAMILY)]
    # cm and cm-pca read the same input: the group keeps the first in registry order
    assert architectures(["cm-pca", "cm", "cm-sc"]) == [["cm", "cm-sc"]]
    assert architectures(["cm", "cm-pca", "smt", "smt-cls"]) == []
    # models run with other settings or tuning are never paired: the contrast must change the inputs only
    config = {"tuning": True, "untuned_models": ["mlp-sc"], "model_params": {}}
    assert architectures(["mlp", "mlp-sc", "mlp-expr-sc"], config) == [["mlp", "mlp-expr-sc"]]
    config = {"tuning": False, "model_params": {"mlp": {"epochs": 3}}}
    assert architectures(["mlp", "mlp-sc", "mlp-expr-sc"], config) == [["mlp-sc", "mlp-expr-sc"]]


def test_contrasts_isolate_one_input():
    found = {(c.model, c.reference, c.kind, c.modality) for c in input_contrasts(architectures(MLP_FAMILY)[0])}
    assert found == {
        ("mlp-expr-sc", "mlp-sc", "adds", "expression"),
        ("mlp-coords", "mlp-coords-only", "adds", "expression"),
        ("mlp-coords", "mlp", "adds", "coordinates"),
        ("mlp-coords-sc", "mlp-expr-sc", "adds", "coordinates"),
        ("mlp-expr-sc", "mlp", "adds", "structural"),
        ("mlp-coords-sc", "mlp-coords", "adds", "structural"),
        ("mlp", "mlp-coords-only", "alone", "expression"),
        ("mlp", "mlp-sc", "alone", "expression"),
        ("mlp-coords-only", "mlp-sc", "alone", "coordinates"),
    }
    labels = [c.label for c in input_contrasts(["mlp", "mlp-sc", "mlp-expr-sc"])]
    assert labels == [
        "expression + SC − SC alone (adds expression)",
        "expression + SC − expression alone (adds SC)",
        "expression alone − SC alone",
    ]


def _rows(scores: dict[str, list[float]], split_type: str = "random") -> pd.DataFrame:
    rows = []
    for model, values in scores.items():
        for k, value in enumerate(values):
            if np.isnan(value):
                continue  # a split the model was not scored on
            for metric, v in (("pearson", value), ("mse", 1.0 - value)):
                rows.append(
                    {
                        "dataset": "d",
                        "split_type": split_type,
                        "model": model,
                        "input": "true",
                        "repeat": k // 4,
                        "fold": k % 4,
                        "metric": metric,
                        "stratum": "all",
                        "value": v,
                    }
                )
    return pd.DataFrame(rows)


def test_contrasts_are_paired_over_the_splits_both_models_were_scored_on():
    expr_sc = [0.60, 0.55, 0.70, 0.65, 0.62, 0.58]
    sc = [0.50, 0.45, 0.52, 0.55, np.nan, 0.47]  # split 4 missing: five pairs
    expr = [0.61, 0.57, 0.66, 0.60, 0.63, 0.59]
    table = contrast_table(_rows({"mlp-expr-sc": expr_sc, "mlp-sc": sc, "mlp": expr}), ["mlp", "mlp-sc", "mlp-expr-sc"])
    got = table.set_index(["model", "reference"])
    for (model, a), (reference, b) in (
        (("mlp-expr-sc", expr_sc), ("mlp-sc", sc)),
        (("mlp-expr-sc", expr_sc), ("mlp", expr)),
        (("mlp", expr), ("mlp-sc", sc)),
    ):
        d = np.array(a) - np.array(b)
        d = d[np.isfinite(d)]
        row = got.loc[(model, reference)]
        assert row["n"] == d.size
        assert row["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
        assert row["sd_diff"] == pytest.approx(d.std(ddof=1), abs=1e-12)
        half = scipy_stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
        assert row["ci_low"] == pytest.approx(d.mean() - half, abs=1e-12)
        assert row["ci_high"] == pytest.approx(d.mean() + half, abs=1e-12)
        assert row["n_ahead"] == int((d > 0).sum())
        assert row["lead"] == ("ahead" if d.mean() - half > 0 else "behind" if d.mean() + half < 0 else "level")
    # SC adds 0.10 or more on each of the five shared splits: ahead; exact sign-flip p = 2/2^5
    assert got.loc[("mlp-expr-sc", "mlp-sc"), "lead"] == "ahead"
    assert got.loc[("mlp-expr-sc", "mlp-sc"), "signflip_p"] == pytest.approx(2 / 32)


def test_split_types_are_paired_apart_and_one_split_gives_no_lead():
    random = _rows({"mlp": [0.5, 0.6, 0.7, 0.8], "mlp-sc": [0.4, 0.5, 0.6, 0.7]})
    # a held-out split type whose (repeat, fold) labels overlap the random ones, one fold only
    structure = _rows({"mlp": [0.1], "mlp-sc": [0.3]}, split_type="structure")
    table = contrast_table(pd.concat([random, structure]), ["mlp", "mlp-sc"]).set_index("split_type")
    assert table.loc["random", "n"] == 4 and table.loc["random", "mean_diff"] == pytest.approx(0.1)
    assert table.loc["random", "sd_diff"] == pytest.approx(0.0, abs=1e-12)
    one = table.loc["structure"]
    assert one["n"] == 1 and one["mean_diff"] == pytest.approx(-0.2) and one["lead"] == "n/a"
    assert np.isnan(one["sd_diff"]) and np.isnan(one["ci_low"])


def test_input_table_counts_only_finite_scores():
    rows = _rows({"mlp": [0.5, 0.7, np.nan, 0.6], "mlp-sc": [0.3, np.nan, np.nan, np.nan]})
    rows.loc[(rows["model"] == "mlp") & (rows["fold"] == 3) & (rows["metric"] == "pearson"), "value"] = np.nan
    table = input_table(rows, ["mlp", "mlp-sc"]).set_index("model")
    assert table.loc["mlp", "n"] == 2 and table.loc["mlp", "mean"] == pytest.approx(0.6)
    assert table.loc["mlp", "sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert table.loc["mlp-sc", "n"] == 1 and np.isnan(table.loc["mlp-sc", "sd"])
    assert table.loc["mlp", "inputs"] == "expression alone" and table.loc["mlp-sc", "inputs"] == "SC alone"


@pytest.mark.slow
def test_the_section_shows_each_row_with_the_null_verdict_of_its_null_runs(tmp_path):
    out = tmp_path / "run"
    config = ExperimentConfig(
        name="inputs-test",
        datasets=["synthetic:n_regions=24,n_genes=12,rule=bilinear,seed=5"],
        models=["cm", "cm-sc"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true", "null"],
        tuning=False,
        nulls={"n": 100, "top": 3, "method": "cge", "seed": 0},
        seed=2,
    )
    assert not run_experiment(config, out, progress=False).failed
    path = write_report(out, out / "report", n_permutations=200, html=False, brain_views=False)
    text = path.read_text()
    section = text[text.index("### Inputs compared") :]
    tables_dir = out / "report" / "tables"
    verdicts = pd.read_csv(next(tables_dir.glob("null_families_*.csv")))
    cm = verdicts[verdicts["model"] == "cm"].iloc[0]
    said = "beats" if cm["rank_reject"] else "does not beat"
    assert f"{said} `{cm['null_family']}` nulls (Holm p {cm['rank_p_holm']:.3g})" in section
    # cm-sc reads no expression: it has no null runs and no verdict
    sc_row = next(line for line in section.splitlines() if line.startswith("| SC alone"))
    assert "nulls" not in sc_row
    contrasts = pd.read_csv(next(tables_dir.glob("input_contrasts_*.csv")))
    assert contrasts[["model", "reference", "kind"]].values.tolist() == [["cm", "cm-sc", "alone"]]
    means = pd.read_csv(next(tables_dir.glob("inputs_*.csv"))).set_index("model")
    df = ResultsStore(out).load()
    for model in ("cm", "cm-sc"):
        stored = df[(df["model"] == model) & (df["input"] == "true") & (df["metric"] == "pearson")]
        stored = stored[stored["stratum"] == "all"]["value"]
        assert means.loc[model, "n"] == 4 and means.loc[model, "mean"] == pytest.approx(stored.mean(), abs=1e-12)


def test_no_section_without_two_input_sets_of_one_architecture(tmp_path):
    out = tmp_path / "run"
    config = ExperimentConfig(
        name="no-inputs-section",
        datasets=["synthetic:n_regions=24,n_genes=12,rule=bilinear,seed=5"],
        models=["cm", "cm-pca"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
    )
    assert not run_experiment(config, out, progress=False).failed
    path = write_report(out, out / "report", n_permutations=50, html=False, brain_views=False)
    assert "Inputs compared" not in path.read_text()
    assert not list((out / "report" / "tables").glob("input*_*.csv"))
