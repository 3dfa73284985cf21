"""The resolution ladder (Tables 5–8) and the transfer matrix (Fig. 12): their numbers equal
an independent recomputation of the stored rows, and the lead calls follow the intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import figures
from spatiomol.reports.overview_sections import transfer_matrix
from spatiomol.reports.report import write_report
from spatiomol.reports.resolution_sections import counterpart

SMALL = "synthetic:n_regions=24,n_genes=16,rule=bilinear,seed=3"
LARGE = "synthetic:n_regions=40,n_genes=16,rule=bilinear,seed=3"
TINY_NEURAL = {"epochs": 2, "batch_size": 256}


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder")
    config = ExperimentConfig(
        name="ladder-test",
        datasets=[LARGE, SMALL],  # listed largest first: the section orders them by size
        models=["cm", "mlp-coords", "smt-cls"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
        seed=1,
        model_params={
            "mlp-coords": TINY_NEURAL,
            "smt-cls": {**TINY_NEURAL, "d_model": 16, "nhead": 2, "num_layers": 1, "token_encoder_dim": 8},
        },
    )
    assert not run_experiment(config, out, progress=False).failed
    path = write_report(out, out / "report", n_permutations=200, html=False, brain_views=False)
    tables_dir = out / "report" / "tables"
    return (
        ResultsStore(out).load(),
        path.read_text(),
        pd.read_csv(tables_dir / "resolution_ladder.csv", dtype={"input": str}),
        pd.read_csv(tables_dir / "resolution_ladder_pairs.csv"),
        out / "report" / "figures" / "resolution_ladder.png",
    )


def _scores(df, dataset, model):
    sel = df[(df["metric"] == "pearson") & (df["stratum"] == "all") & (df["input"] == "true")]
    sel = sel[(sel["dataset"] == dataset) & (sel["model"] == model)].sort_values(["repeat", "fold"])
    return sel["value"].to_numpy()


def test_counterparts_are_the_mlps_reading_the_same_inputs():
    assert counterpart("smt") == "mlp"
    assert counterpart("smt-cls") == "mlp-coords"
    assert counterpart("cm") is None and counterpart("mlp") is None


def test_ladder_table_is_the_stored_scores_with_t_intervals(ladder):
    df, text, table, _, figure = ladder
    assert set(table["n_regions"]) == {24, 40}
    for _, row in table.iterrows():
        values = _scores(df, row["dataset"], row["model"])
        assert row["n"] == len(values) == 4
        assert row["mean"] == pytest.approx(values.mean(), abs=1e-12)
        assert row["sd"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        half = scipy_stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2.0
        assert row["ci_low"] == pytest.approx(values.mean() - half, abs=1e-12)
        assert row["ci_high"] == pytest.approx(values.mean() + half, abs=1e-12)
    section = text[text.index("Across resolutions") : text.index("Headline:")]
    assert section.index("(24)") < section.index("(40)")  # ordered by number of regions
    # the 2-epoch neural fits are flagged by the training check, and the ladder counts them per cell
    runs = df.drop_duplicates("run_id")
    for _, row in table.iterrows():
        cell = runs[(runs["dataset"] == row["dataset"]) & (runs["model"] == row["model"])]
        assert row["not_trained"] == cell["training_check"].str.startswith("not trained").sum()
    assert table.loc[table["model"] == "cm", "not_trained"].eq(0).all()
    assert "not trained**" in section
    assert figure.is_file()


def test_ladder_pairs_each_smt_with_its_mlp_and_calls_a_lead_only_outside_the_interval(ladder):
    df, text, _, pairs, _ = ladder
    assert set(zip(pairs["model"], pairs["reference"])) == {("smt-cls", "mlp-coords")}
    for _, row in pairs.iterrows():
        d = _scores(df, row["dataset"], "smt-cls") - _scores(df, row["dataset"], "mlp-coords")
        assert row["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
        assert row["sd_diff"] == pytest.approx(d.std(ddof=1), abs=1e-12)
        assert row["n_ahead"] == int((d > 0).sum())
        low, high = scipy_stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(len(d)))
        expected = "ahead" if low > 0 else "behind" if high < 0 else "level"
        assert row["lead"] == expected
    assert "SMT w/ [CLS] − MLP w/ coords" in text
    assert "SMT w/ [CLS] leads MLP w/ coords" in text


def test_ladder_figure_draws_one_line_per_model_at_the_table_means(ladder):
    _, _, table, _, _ = ladder
    fig = figures.draw_resolution_ladder(table)
    ax = fig.axes[0]
    lines = {container.get_label(): container.lines[0] for container in ax.containers}
    assert set(lines) == {"Bilinear CM", "MLP w/ coords", "SMT w/ [CLS]"}
    cm = table[(table["model"] == "cm") & (table["input"] == "true")].sort_values("n_regions")
    np.testing.assert_allclose(lines["Bilinear CM"].get_xdata(), cm["n_regions"], rtol=0.05)  # dodged
    np.testing.assert_allclose(lines["Bilinear CM"].get_ydata(), cm["mean"])


def test_one_dataset_has_no_ladder(tmp_path):
    config = ExperimentConfig(
        name="one",
        datasets=[SMALL],
        models=["cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true"],
        tuning=False,
    )
    assert not run_experiment(config, tmp_path, progress=False).failed
    text = write_report(tmp_path, tmp_path / "report", n_permutations=50, html=False, brain_views=False).read_text()
    assert "Across resolutions" not in text
    assert not (tmp_path / "report" / "tables" / "resolution_ladder.csv").exists()


def test_transfer_matrix_places_each_pair_and_its_gain():
    table = pd.DataFrame(
        {
            "source": ["a", "a", "b", "b", "c"],
            "target": ["b", "c", "a", "c", "a"],
            "model": ["smt-cls"] * 5,
            "null_family": ["anatomical"] * 5,
            "pearson_true": [0.5, 0.4, 0.6, 0.3, 0.7],
            "pearson_null": [0.2, 0.1, 0.5, 0.3, 0.1],
        }
    )
    table["gain_r"] = table["pearson_true"] - table["pearson_null"]
    r, gain = transfer_matrix(table, "smt-cls", ["c", "a", "b"])
    assert list(r.index) == list(r.columns) == ["c", "a", "b"]
    assert r.loc["a", "b"] == 0.5 and r.loc["c", "a"] == 0.7 and np.isnan(r.loc["c", "b"]) and np.isnan(r.loc["a", "a"])
    assert gain.loc["b", "a"] == pytest.approx(0.1) and gain.loc["b", "c"] == pytest.approx(0.0)
    fig = figures.draw_transfer_matrix(r, gain, "t")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(["0.50\n+0.30", "0.40\n+0.30", "0.60\n+0.10", "0.30\n+0.00", "0.70\n+0.60"])


def test_datasets_of_different_targets_are_never_one_ladder():
    from spatiomol.reports.resolution_sections import ladder_groups

    df = pd.DataFrame({"dataset": ["a", "b", "c", "d"], "input": ["true"] * 4})
    info = {
        "a": {"target_kind": "fc", "target_scale": "r", "n_regions": 82},
        "b": {"target_kind": "fc", "target_scale": "r", "n_regions": 114},
        "c": {"target_kind": "sc", "target_scale": "raw", "n_regions": 114},
        "d": {"target_kind": "sc", "target_scale": "raw", "n_regions": 114},
    }
    assert ladder_groups(df, {"datasets": info}) == [["a", "b"]]  # c and d: one resolution only
