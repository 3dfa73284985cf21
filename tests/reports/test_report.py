"""Report tables and figures equal an independent recomputation of the stored rows; files are written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from scipy import stats as sps

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import figures, stats, tables
from spatiomol.reports.report import write_report

DATASET = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=5"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    config = ExperimentConfig(
        name="report-test",
        datasets=[DATASET],
        models=["exp-decay", "cm-pca", "cm"],
        splits=["random", "spatial"],
        repeats=2,
        folds=4,
        inputs=["true", "null"],
        variants=[{"model": "cm", "input": "permuted"}],
        tuning=False,
        seed=1,
        nulls={"n": 200, "top": 2, "method": "cge", "seed": 0},
        notes="synthetic test grid",
    )
    summary = run_experiment(config, out, progress=False)
    assert not summary.failed
    return out, ResultsStore(out).load()


def _independent(df, split, model, inp, metric, stratum):
    sel = df.loc[
        (df.split_type == split)
        & (df.model == model)
        & (df.input == inp)
        & (df.metric == metric)
        & (df.stratum == stratum),
        ["repeat", "fold", "null_index", "value"],
    ]
    # one value per split; null input: one per split and null (shared folds, K = top = 2 nulls)
    per_split = 2 if inp == "null" else 1
    assert len(sel) == 8 * per_split and not sel.duplicated(["repeat", "fold", "null_index"]).any()
    v = sel["value"].to_numpy()
    v = v[np.isfinite(v)]  # a stratum with too few test edges is NaN on that split: averaged over the rest
    return (v.mean() if v.size else np.nan), (v.std(ddof=1) if v.size > 1 else np.nan)


CELL = re.compile(r"^(\*\*)?(-?\d+\.\d+) ± (\d+\.\d+)(\*\*)?$")


def test_table1_mean_sd_match_stored_rows(results):
    _, df = results
    formatted, numeric = tables.table1(tables.split_summary(df), DATASET)
    assert list(formatted.index) == ["Dist. Exp. Decay", "Bilinear CM (PCA)", "Bilinear CM"]
    for model, name in (("exp-decay", "Dist. Exp. Decay"), ("cm-pca", "Bilinear CM (PCA)"), ("cm", "Bilinear CM")):
        for split in ("random", "spatial"):
            for metric, fmt in (("pearson", ".2f"), ("mse", ".4f"), ("geodesic", ".2f")):
                mean, sd = _independent(df, split, model, "true", metric, "all")
                assert numeric.loc[name, f"{split} {metric} true mean"] == pytest.approx(mean, rel=1e-12)
                assert numeric.loc[name, f"{split} {metric} true sd"] == pytest.approx(sd, rel=1e-12)
                col = (
                    f"{split}: Pearson r (true / null)"
                    if metric == "pearson"
                    else f"{split}: {'MSE' if metric == 'mse' else 'Geodesic'}"
                )
                cell = formatted.loc[name, col].split(" / ")[0]
                m = CELL.match(cell)
                assert m and m.group(2) == format(mean, fmt) and m.group(3) == format(sd, fmt)
            if model == "exp-decay":
                assert formatted.loc[name, f"{split}: Pearson r (true / null)"].endswith("/ –")
            else:
                mean, sd = _independent(df, split, model, "null", "pearson", "all")
                assert numeric.loc[name, f"{split} pearson null mean"] == pytest.approx(mean, rel=1e-12)
                null_cell = formatted.loc[name, f"{split}: Pearson r (true / null)"].split(" / ")[1]
                assert null_cell == f"{mean:.2f} ± {sd:.2f}"


def test_table2_and_table3_match_stored_rows(results):
    _, df = results
    summary = tables.split_summary(df)
    _, t2 = tables.table2(summary, DATASET)
    for split in ("random", "spatial"):  # strata defined on most splits of this synthetic brain
        for stratum, title in (("distance:long", "Long r"), ("hemisphere:inter", "Inter-hemi r")):
            mean, sd = _independent(df, split, "cm", "true", "pearson", stratum)
            assert np.isfinite(mean)
            assert t2.loc["Bilinear CM", f"{split}: {title} mean"] == pytest.approx(mean, rel=1e-12)
            # SD is NaN (ddof=1) where only one split defines the stratum, in both computations
            assert t2.loc["Bilinear CM", f"{split}: {title} sd"] == pytest.approx(sd, rel=1e-12, nan_ok=True)
    t3, t3n = tables.table3(summary, DATASET, variants=[{"model": "cm", "input": "permuted"}])
    assert list(t3["Features"]) == ["permuted"]
    mean, sd = _independent(df, "random", "cm", "permuted", "r2", "all")
    assert t3n["R² mean"].iloc[0] == pytest.approx(mean, rel=1e-12)
    assert t3["R²"].iloc[0] == f"{mean:.2f} ± {sd:.2f}"


def test_planted_signal_survives_into_the_report_numbers(results):
    _, df = results
    mean_true, _ = _independent(df, "random", "cm", "true", "pearson", "all")
    mean_null, _ = _independent(df, "random", "cm", "null", "pearson", "all")
    assert mean_true > 0.6 and mean_true - mean_null > 0.3


def _artists(fig) -> list[dict]:
    """What each axes of a figure shows, read back from its matplotlib artists."""
    out = []
    for ax in fig.axes:
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        out.append(
            {
                "title": ax.get_title(),
                "images": [np.ma.filled(im.get_array().astype(float), np.nan) for im in ax.get_images()],
                "bars": {c.get_label(): [p.get_height() for p in c.patches] for c in bars},
                "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                "points": [(c.lines[0].get_xdata(), c.lines[0].get_ydata()) for c in errorbars],
                "error_segments": [c.lines[2][0].get_segments() for c in errorbars],
                "texts": [t.get_text() for t in ax.texts],
            }
        )
    return out


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The Markdown report of `results` (no HTML, no brain views) and, per PNG it saved,
    the `_artists` of the figure."""
    out = tmp_path_factory.mktemp("report")
    drawn: dict[str, list[dict]] = {}
    save = figures.save_figure

    def capture(fig, path, dpi=110):
        drawn[Path(path).name] = _artists(fig)
        return save(fig, path, dpi)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "save_figure", capture)
        path = write_report(results[0], out, n_permutations=2000, html=False, brain_views=False)
    return path, drawn


def test_write_report_files_and_csv_round_trip(results, report):
    _, df = results
    path, drawn = report
    tmp_path = path.parent
    text = path.read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "True vs null", "best linear model", "synthetic test grid"):
        assert heading in text
    slug = "synthetic_n_regions_40_n_genes_30_rule_b"
    t1 = pd.read_csv(tmp_path / "tables" / f"table1_{slug}.csv", index_col=0)
    mean, sd = _independent(df, "spatial", "cm-pca", "true", "mse", "all")
    assert t1.loc["Bilinear CM (PCA)", "spatial mse true mean"] == pytest.approx(mean, rel=1e-12)
    tvn = pd.read_csv(tmp_path / "tables" / f"stats_true_vs_null_{slug}.csv")
    assert set(tvn["model"]) == {"cm", "cm-pca"} and (tvn["n"] == 8).all()
    pngs = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert pngs == set(drawn) and not (tmp_path / "report.html").exists()
    assert {name.split("_")[0] for name in pngs} == {"connectomes", "network", "parameters", "cge", "null"}
    for ref in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (tmp_path / ref).exists()


def _best_linear(df, split):
    means = {m: _independent(df, split, m, "true", "pearson", "all")[0] for m in ("cm", "cm-pca")}
    return max(means, key=means.get)


def test_report_figures_plot_the_stored_numbers(results, report):
    """Bars, points and matrices read back from the report's figures equal the stored rows."""
    results_dir, df = results
    _, drawn = report
    slug = "synthetic_n_regions_40_n_genes_30_rule_b"
    for split in ("random", "spatial"):
        # Fig. 5B: the only non-linear model (exp-decay) minus the best linear model, per network
        reference = _best_linear(df, split)
        (ax,) = drawn[f"network_gain_{slug}_{split}.png"]
        assert tables.display(reference) in ax["title"] and "Dist. Exp. Decay" in ax["title"]
        strata = sorted({s for s in df["stratum"] if s.startswith("network:")})
        networks = list(dict.fromkeys(s.split(":")[1] for s in strata))
        assert ax["xticklabels"] == networks
        for label, edges in (("within network", "intra"), ("network ↔ rest", "rest")):
            expected = [
                _independent(df, split, "exp-decay", "true", "pearson", f"network:{n}:{edges}")[0]
                - _independent(df, split, reference, "true", "pearson", f"network:{n}:{edges}")[0]
                for n in networks
            ]
            np.testing.assert_allclose(ax["bars"][label], expected, rtol=1e-12, atol=1e-15)
        # test connectomes: observed, predicted (true), predicted (null) of repeat 0 fold 0
        # of the best model with null runs, from the stored predictions
        panels = drawn[f"connectomes_{slug}_{split}.png"]
        assert [p["title"] for p in panels[:3]] == [
            "observed (test edges)",
            "predicted, true expression",
            "predicted, null expression",
        ]
        for k, (inp, key) in enumerate((("true", "y_true"), ("true", "y_pred"), ("null", "y_pred"))):
            rid = df.loc[
                (df.model == reference)
                & (df.split_type == split)
                & (df.input == inp)
                & (df.repeat == 0)
                & (df.fold == 0),
                "run_id",
            ].iloc[0]
            with np.load(results_dir / "predictions" / f"{rid}.npz") as p:
                regions = sorted(set(p["i"]) | set(p["j"]))
                expected = np.full((len(regions), len(regions)), np.nan)
                for a, b, v in zip(p["i"], p["j"], p[key]):
                    expected[regions.index(a), regions.index(b)] = expected[regions.index(b), regions.index(a)] = v
            np.testing.assert_array_equal(panels[k]["images"][0], expected)
    # Fig. 5C (spatial splits): one point per model at (max(parameters, 1), mean r), bars ± SD
    (ax,) = drawn[f"parameters_{slug}.png"]
    (xs, ys), (segments,) = ax["points"][0], ax["error_segments"]
    for label, x, y, segment in zip(ax["texts"], xs, ys, segments):
        model = {tables.display(m): m for m in ("exp-decay", "cm-pca", "cm")}[label]
        mean, sd = _independent(df, "spatial", model, "true", "pearson", "all")
        runs = df[(df.model == model) & (df.split_type == "spatial") & (df.input == "true")]
        n_parameters = runs.drop_duplicates("run_id")["n_parameters"].mean()
        assert (x, y) == (pytest.approx(max(n_parameters, 1.0)), pytest.approx(mean, rel=1e-12))
        assert segment[:, 1] == pytest.approx([mean - sd, mean + sd], rel=1e-12)
    assert len(ax["texts"]) == 3
    # Fig. 3: the true brain's bars are the mean CGE in 5 mm distance bins (scipy's binned mean)
    from spatiomol.data.sources import resolve_source

    brain = resolve_source(DATASET)
    i, j = np.triu_indices(brain.n_regions, 1)
    d = brain.distances[i, j]
    means, _, _ = sps.binned_statistic(d, np.corrcoef(brain.X)[i, j], "mean", bins=np.arange(0, d.max() + 5, 5))
    first = drawn[f"cge_distance_{slug}.png"][0]
    np.testing.assert_allclose(first["bars"][next(iter(first["bars"]))], means[np.isfinite(means)], rtol=1e-10)


def test_feature_names_follow_the_model_records():
    # the paper's Table 3 labels, and what the distance rules and CM read
    cases = {
        ("mlp-coords-only", "true"): "coords",
        ("mlp-coords", "permuted"): "permuted + coords",
        ("mlp-coords", "null"): "SM + coords",
        ("smt-cls", "permuted"): "permuted + coords",
        ("smt-cls", "null"): "SM + coords",
        ("cm", "permuted"): "permuted",
        ("cm", "null"): "SM",
        ("mlp", "true"): "expression",
        ("exp-decay", "true"): "coords",
    }
    assert {cell: tables.feature_name(*cell) for cell in cases} == cases
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        tables.feature_name("no-such-model", "true")
    with pytest.raises(ValueError, match="unknown input 'shuffled'"):
        tables.feature_name("cm", "shuffled")
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        tables.display("no-such-model")
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        tables.model_order(["cm", "no-such-model"])
    assert tables.model_order(["mlp-coords-only", "mlp", "cm"]) == ["cm", "mlp", "mlp-coords-only"]
    assert stats.linear_models(["mlp", "cm", "exp-decay", "bilinear-lowrank"]) == ["cm", "bilinear-lowrank"]


def test_report_of_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no finished runs"):
        write_report(tmp_path)
    assert tables.format_cell(np.nan, np.nan) == "–" and tables.format_cell(0.5, np.nan) == "0.50 ± n/a"


# ------------------------------------------------------- one configuration per report
def _grid(nulls_seed, **changes):
    base = {
        "name": "rerun",
        "datasets": [DATASET],
        "models": ["cm"],
        "splits": ["random", "spatial"],
        "repeats": 2,
        "folds": 4,
        "inputs": ["true", "null"],
        "tuning": False,
        "seed": 1,
        "nulls": {"n": 200, "top": 2, "method": "cge", "seed": nulls_seed},
    }
    return ExperimentConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def rerun_folders(tmp_path_factory):
    """Folder ``mixed``: a grid, then the same grid with another nulls seed and Table 3 variants
    on both split types; folder ``fresh``: only the second configuration."""
    root = tmp_path_factory.mktemp("rerun")
    second = {"variants": [{"model": "cm", "input": "permuted"}], "variant_splits": ["random", "spatial"]}
    assert not run_experiment(_grid(0), root / "mixed", progress=False, log=lambda m: None).failed
    assert not run_experiment(_grid(1, **second), root / "mixed", progress=False, log=lambda m: None).failed
    assert not run_experiment(_grid(1, **second), root / "fresh", progress=False, log=lambda m: None).failed
    return root


def test_report_after_rerun_with_other_settings_equals_fresh_folder(rerun_folders, tmp_path):
    root = rerun_folders
    mixed_df = ResultsStore(root / "mixed").load()
    # true runs (shared), 2 nulls × 16 splits for each nulls seed, variants
    assert mixed_df["run_id"].nunique() == 16 + 2 * 32 + 16
    # failures: one of an old configuration's run (not listed), one of a current run (listed)
    current = ResultsStore(root / "mixed").read_manifest()["run_ids"]
    (root / "mixed" / "failures").mkdir(exist_ok=True)
    (root / "mixed" / "failures" / "0123456789abcdef0123.txt").write_text("OLD-CONFIG RUN\n")
    (root / "mixed" / "failures" / f"{current[0]}.txt").write_text("CURRENT RUN\n")
    a = write_report(root / "mixed", tmp_path / "a", n_permutations=500, html=False, brain_views=False).read_text()
    write_report(root / "fresh", tmp_path / "b", n_permutations=500, html=False, brain_views=False)
    names = sorted(
        p.name for p in (tmp_path / "b" / "tables").glob("*.csv") if p.name not in ("results.csv", "summary.csv")
    )  # those two carry fit times
    assert {
        "table1_synthetic_n_regions_40_n_genes_30_rule_b.csv",
        "table3_synthetic_n_regions_40_n_genes_30_rule_b_random.csv",
        "table3_synthetic_n_regions_40_n_genes_30_rule_b_spatial.csv",
    } <= set(names)
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "a" / "tables" / name),
            pd.read_csv(tmp_path / "b" / "tables" / name),
            check_exact=True,
            obj=name,
        )
    # the null column is the mean over the 16 runs (2 nulls × 8 splits) of the new seed only
    fresh_df = ResultsStore(root / "fresh").load()
    t1 = pd.read_csv(tmp_path / "a" / "tables" / "table1_synthetic_n_regions_40_n_genes_30_rule_b.csv", index_col=0)
    for split in ("random", "spatial"):
        mean, sd = _independent(fresh_df, split, "cm", "null", "pearson", "all")
        assert t1.loc["Bilinear CM", f"{split} pearson null mean"] == pytest.approx(mean, rel=1e-12)
        assert t1.loc["Bilinear CM", f"{split} pearson null sd"] == pytest.approx(sd, rel=1e-12)
    assert "CURRENT RUN" in a and "OLD-CONFIG RUN" not in a


def test_table3_per_variant_split_type(rerun_folders, tmp_path):
    root = rerun_folders
    df = ResultsStore(root / "fresh").load()
    text = write_report(root / "fresh", tmp_path, n_permutations=500, html=False, brain_views=False).read_text()
    for split in ("random", "spatial"):
        assert f"### Table 3: null models with varying feature access ({split} splits)" in text
        t3 = pd.read_csv(tmp_path / "tables" / f"table3_synthetic_n_regions_40_n_genes_30_rule_b_{split}.csv")
        mean, sd = _independent(df, split, "cm", "permuted", "pearson", "all")
        assert list(t3["Features"]) == ["permuted"]
        assert t3["Pearson r mean"].iloc[0] == pytest.approx(mean, rel=1e-12)
        assert t3["Pearson r sd"].iloc[0] == pytest.approx(sd, rel=1e-12)
    # the two Table 3s differ (spatial and random splits are different runs)
    r = pd.read_csv(tmp_path / "tables" / "table3_synthetic_n_regions_40_n_genes_30_rule_b_random.csv")
    s = pd.read_csv(tmp_path / "tables" / "table3_synthetic_n_regions_40_n_genes_30_rule_b_spatial.csv")
    assert r["Pearson r mean"].iloc[0] != s["Pearson r mean"].iloc[0]


def test_cell_with_two_settings_is_a_clear_error(rerun_folders, tmp_path):
    import json
    import shutil

    folder = tmp_path / "legacy"
    shutil.copytree(rerun_folders / "mixed", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["run_ids"]  # a folder whose manifest cannot say which runs are current
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as info:
        write_report(folder, tmp_path / "out", n_permutations=500, html=False)
    message = str(info.value)
    assert str(folder / "manifest.json") in message
    # the first configuration's null runs (seed 0) form a family the latest configuration does not name
    assert "null runs of families ['cge(n=200,top=2)']" in message and "'cge(n=200,top=2,seed=1)'" in message
    assert "field 'run_ids'" in message


def test_cell_with_two_runs_is_a_clear_error(rerun_folders):
    from spatiomol.reports.report import current_runs

    df = ResultsStore(rerun_folders / "fresh").load()
    cell = (df["model"] == "cm") & (df["input"] == "true") & (df["split_type"] == "random") & (df["repeat"] == 1)
    twin = df[cell & (df["fold"] == 2)].assign(run_id="0123456789abcdef0123")  # same cell, other settings
    with pytest.raises(ValueError) as info:
        current_runs(pd.concat([df, twin]), {}, "where/manifest.json")
    message = str(info.value)
    assert message.startswith("where/manifest.json: 1 report cell(s) hold runs of different settings")
    assert "'input': 'true'" in message and "'fold': 2" in message and "0123456789abcdef0123" in message
    # null runs of two families are two cells, not a conflict
    other = df[df["input"] == "null"].assign(run_id=lambda d: d["run_id"] + "x", null_family="moran")
    both = current_runs(pd.concat([df, other]), {})
    assert len(both) == len(df) + len(other)
