"""A results folder with two null families: the report's family section, tables and null diagnostics.

The folder ``one`` runs the ``cge`` family alone; ``two`` adds ``moran`` side by side (into
a copy of ``one``, so its cge runs are the same parts). Checked against independent
recomputations: the consensus lines against `family_comparisons` / `consensus` and the rank
test on the stored rows, the figure's points against the stored rows, Tables 1–3 against the
one-family folder, the null diagnostic against the NullSet's permutations and replaced rows,
and the CGE–distance figure of nulls with replaced rows against ``np.corrcoef`` of their
expression and the curves `score_nulls` stored.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from spatiomol.cli.main import main
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.nulls import NullSet
from spatiomol.reports import figures
from spatiomol.reports.context import ReportContext, slug
from spatiomol.reports.document import Bullets, png_data_uri
from spatiomol.reports.null_families import consensus, family_comparisons, manifest_families
from spatiomol.reports.null_sections import null_families_section, own_expression_fraction
from spatiomol.reports.report import html_path, write_report
from spatiomol.reports.tables import display
from spatiomol.reports.verdict import true_vs_nulls

DATASET = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=5"
SLUG = "synthetic_n_regions_40_n_genes_30_rule_b"
CGE = {"n": 100, "top": 2, "method": "cge", "seed": 0}
MORAN = {"n": 10, "top": 2, "method": "moran", "seed": 0}
FAMILIES = ["cge(n=100,top=2)", "moran(n=10,top=2)"]
PERMUTATIONS = 2000


def _config(nulls) -> ExperimentConfig:
    return ExperimentConfig(
        name="families-test",
        datasets=[DATASET],
        models=["cm", "cm-pca"],
        splits=["random"],
        repeats=2,
        folds=4,
        inputs=["true", "null"],
        variants=[{"model": "cm", "input": "permuted"}, {"model": "cm", "input": "null"}],
        tuning=False,
        seed=1,
        nulls=nulls,
    )


def _figure_data(fig) -> list[dict]:
    """Per visible axes: title, points of each gid-tagged scatter, y of each gid-tagged line."""
    return [
        {
            "title": ax.get_title(),
            "points": {c.get_gid(): np.asarray(c.get_offsets()) for c in ax.collections if c.get_gid()},
            "lines": {ln.get_gid(): np.asarray(ln.get_ydata(), dtype=float) for ln in ax.lines if ln.get_gid()},
            "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
            "collections": [np.asarray(c.get_offsets()) for c in ax.collections],
            "ylim": ax.get_ylim(),
        }
        for ax in fig.axes
        if ax.get_visible()
    ]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(root, drawn): ``root/one`` (cge) and ``root/two`` (cge + moran), their reports under
    ``root/report_one`` (Markdown) and ``root/report_two`` (Markdown + HTML), and the data of
    every figure ``two``'s report drew, by PNG name."""
    root = tmp_path_factory.mktemp("families")
    quiet = {"progress": False, "log": lambda m: None}
    assert not run_experiment(_config(CGE), root / "one", **quiet).failed
    shutil.copytree(root / "one", root / "two")
    summary = run_experiment(_config([CGE, MORAN]), root / "two", **quiet)
    # 2 moran nulls × 8 splits × (cm, cm-pca) added
    assert not summary.failed and summary.already_done == 56 and summary.planned == 88
    drawn: dict[str, list[dict]] = {}
    save = figures.save_figure

    def capture(fig, path, dpi=110):
        drawn[Path(path).name] = _figure_data(fig)
        return save(fig, path, dpi)

    def skip(fig, path, dpi=110):  # the one-family report is read for its tables only
        plt.close(fig)
        return Path(path)

    options = {"n_permutations": PERMUTATIONS, "brain_views": False}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "save_figure", skip)
        write_report(root / "one", root / "report_one", html=False, **options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "save_figure", capture)
        write_report(root / "two", root / "report_two", **options)
    return root, drawn


def _rows(root: Path) -> pd.DataFrame:
    df = ResultsStore(root / "two").load()
    return df[(df["dataset"] == DATASET) & (df["split_type"] != "transfer")].reset_index(drop=True)


def test_consensus_lines_equal_a_direct_recomputation(folders):
    root, _ = folders
    text = (root / "report_two" / "report.md").read_text()
    assert "### True input vs each null family (test Pearson r)" in text
    rows = _rows(root)
    assert families_of(rows) == FAMILIES
    direct = family_comparisons(rows, families=FAMILIES, n_permutations=PERMUTATIONS, seed=0)
    # one comparison by hand: cm, random splits, moran — mean over the 8 paired splits of true − the
    # mean of the family's 2 nulls on the split (shared folds)
    sel = rows[
        (rows.model == "cm") & (rows.split_type == "random") & (rows.metric == "pearson") & (rows.stratum == "all")
    ]
    true = sel[sel.input == "true"].set_index(["repeat", "fold"])["value"]
    null = sel[(sel.input == "null") & (sel.null_family == FAMILIES[1])].groupby(["repeat", "fold"])["value"].mean()
    assert len(sel[(sel.input == "null") & (sel.null_family == FAMILIES[1])]) == 16
    row = direct.set_index(["split_type", "model", "null_family"]).loc[("random", "cm", FAMILIES[1])]
    assert row["n"] == 8 and row["mean_diff"] == pytest.approx((true - null).mean(), abs=1e-14)
    # the planted bilinear signal beats both families (8 splits: p ≥ 2/256)
    assert (direct["mean_diff"] > 0.3).all() and direct["paired_beats"].all()
    paired = consensus(direct, families=FAMILIES)
    rank = true_vs_nulls(rows, family="null_family")
    ranked = consensus(rank, beats="reject", families=FAMILIES)
    bullets = [line[2:] for line in text.splitlines() if line.startswith(("- random splits, ", "- spatial splits, "))]
    expected = [
        f"{p['split_type']} splits, {display(p['model'])}: {r['line']} (paired test: {p['line']})"
        for p, r in zip(paired.to_dict("records"), ranked.to_dict("records"), strict=True)
    ]
    assert sorted(bullets) == sorted(expected) and len(expected) == 2
    assert f"(paired test: beats {FAMILIES[0]}, {FAMILIES[1]})" in text
    from spatiomol.nulls import FAMILIES as SPECS

    assert (
        f"`cge(n=100,top=2)`: {SPECS['cge'].calibration}; `moran(n=10,top=2)`: {SPECS['moran'].calibration}. "
        "**None of these families is calibrated where expression carries anatomy:**"
    ) in text
    # two nulls per family, each on every split: the rank test cannot reject, and says so
    assert (rank["n_nulls"] == 2).all() and (rank["reject"] == 0).all()
    assert "here K = 2 (smallest p 0.333)" in text
    # the section states the splits and the smallest sign-flip p
    assert "n = 8 splits per comparison (2 repeat(s) × 4 folds)" in text
    assert "2/2ⁿ: 0.00781 here; with 4 splits (e.g. the demo's 1 repeat × 4 folds) it is 0.125" in text
    assert "no family can be beaten" not in text
    stored = pd.read_csv(root / "report_two" / "tables" / f"null_families_{SLUG}.csv", keep_default_na=False)
    for column in ("mean_a", "mean_b", "mean_diff", "signflip_p", "signflip_p_bh"):
        np.testing.assert_allclose(stored[column].astype(float), direct[column], rtol=1e-12)


def families_of(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(rows.loc[rows.input == "null", "null_family"]))


def test_family_figure_plots_the_stored_rows(folders):
    root, drawn = folders
    rows = _rows(root)
    rows = rows[(rows.metric == "pearson") & (rows.stratum == "all")]
    for split in ("random",):
        panels = drawn[f"null_families_{SLUG}_{split}.png"]
        assert [p["title"] for p in panels] == [display("cm-pca"), display("cm")]  # Table 1 order
        for panel, model in zip(panels, ["cm-pca", "cm"]):
            assert panel["xticklabels"] == FAMILIES
            sel = rows[(rows.model == model) & (rows.split_type == split)].sort_values(["repeat", "fold", "null_index"])
            for x, family in enumerate(FAMILIES):
                values = sel.loc[(sel.input == "null") & (sel.null_family == family), "value"].to_numpy()
                assert values.size == 16  # a point per null run: 2 nulls × 8 splits
                np.testing.assert_array_equal(panel["points"][family][:, 1], values)
                assert panel["points"][family][:, 0].mean() == pytest.approx(x)
            np.testing.assert_allclose(panel["lines"]["true"], sel.loc[sel.input == "true", "value"].mean(), rtol=1e-14)
            low, high = panel["ylim"]  # the true line and every point lie inside the drawn range
            nulls = sel.loc[sel.input == "null", "value"]
            assert low < panel["lines"]["true"][0] < high and low < nulls.min() and nulls.max() < high


def test_html_holds_the_family_section(folders):
    root, _ = folders
    page = (root / "report_two" / "report.html").read_text(encoding="utf-8")
    assert "<h3>True input vs each null family (test Pearson r)</h3>" in page
    for split in ("random",):
        assert png_data_uri(root / "report_two" / "figures" / f"null_families_{SLUG}_{split}.png") in page
    for line in (root / "report_two" / "report.md").read_text().splitlines():
        if line.startswith("- random splits, "):
            assert f"<li>{html.escape(line[2:], quote=False)}</li>" in page


def test_tables_show_the_first_family_as_a_one_family_folder(folders):
    root, _ = folders
    one, two = root / "report_one" / "tables", root / "report_two" / "tables"
    names = [
        f"table1_{SLUG}.csv",
        f"table2_{SLUG}.csv",
        f"table3_{SLUG}_random.csv",
        f"stats_true_vs_null_{SLUG}.csv",
        f"stats_vs_best_linear_{SLUG}.csv",
        f"parameters_{SLUG}.csv",
    ]
    for name in names:
        pd.testing.assert_frame_equal(pd.read_csv(one / name), pd.read_csv(two / name), check_exact=True, obj=name)
    # and not the mean over both families: Table 1's null column is cge's mean over its 16 runs (2 nulls × 8 splits)
    rows = _rows(root)
    t1 = pd.read_csv(two / f"table1_{SLUG}.csv", index_col=0)
    sel = rows[
        (rows.model == "cm") & (rows.split_type == "random") & (rows.metric == "pearson") & (rows.stratum == "all")
    ]
    cge = sel.loc[(sel.input == "null") & (sel.null_family == FAMILIES[0]), "value"]
    assert len(cge) == 16 and t1.loc["Bilinear CM", "random pearson null mean"] == pytest.approx(cge.mean(), rel=1e-14)
    # Table 3's SM row (cm on null expression) is cge's too
    t3 = pd.read_csv(two / f"table3_{SLUG}_random.csv")
    assert t3.set_index("Features").loc["SM", "Pearson r mean"] == pytest.approx(cge.mean(), rel=1e-14)
    text = (root / "report_two" / "report.md").read_text()
    assert f"null = the model trained on null expression (null family `{FAMILIES[0]}`), the first of the 2" in text
    assert f"SM = spatiomolecular null expression (null family `{FAMILIES[0]}`)" in text
    header = text.split("\n## ")[0]
    assert f"null family `{FAMILIES[0]}`: spins (Váša assignment); top 2 of 100 draws by CGE match" in header
    assert f"null family `{FAMILIES[1]}`: Moran spectral randomisation of all regions; first 2 draws" in header
    # summary.csv keeps the families apart
    summary = pd.read_csv(two / "summary.csv", keep_default_na=False)
    null = summary[(summary.input == "null") & (summary.metric == "pearson") & (summary.stratum == "all")]
    # n_splits counts the runs averaged: for null inputs one per null and split (2 × 8)
    assert set(null["null_family"]) == set(FAMILIES) and (null["n_splits"] == 16).all()


def test_null_diagnostic_counts_replaced_rows_as_moved(folders):
    root, _ = folders
    manifest = ResultsStore(root / "two").read_manifest()
    files = manifest["datasets"][DATASET]["nulls_files"]
    assert list(files) == list(manifest_families(manifest)) == FAMILIES
    cge = NullSet.load(root / "two" / files[FAMILIES[0]])
    moran = NullSet.load(root / "two" / files[FAMILIES[1]])
    # the spins keep the 4 subcortical regions in place in `permutations` and replace their rows
    assert cge.replaced_regions.size == 4 and not cge.is_permutation
    kept = cge.permutations == np.arange(40)
    assert kept[:, cge.replaced_regions].all()  # the identity there: counting it as "own" was the bug
    own = (kept & ~np.isin(np.arange(40), cge.replaced_regions)).mean(axis=1)
    np.testing.assert_allclose(own_expression_fraction(cge), own, rtol=0, atol=1e-15)
    np.testing.assert_allclose(own_expression_fraction(moran), 0.0, atol=0)
    text = (root / "report_two" / "report.md").read_text()
    line = (
        f"- `{FAMILIES[0]}`: the 2 nulls leave {own.min():.0%}–{own.max():.0%} (median {np.median(own):.0%}) of "
        "regions with their own expression (selection required ≥ 90% of regions moved; 4 of 40 regions get new "
        "expression rows, the others are permuted)"
    )
    assert line in text
    assert (
        f"- `{FAMILIES[1]}`: the 2 nulls leave 0%–0% (median 0%) of regions with their own expression "
        "(not CGE-matched: the first draws; every region's row is new expression)"
    ) in text


@pytest.mark.parametrize("family", FAMILIES)
def test_cge_figure_of_replaced_rows_recomputes_their_correlations(folders, family):
    root, drawn = folders
    from spatiomol.data.sources import resolve_source

    brain = resolve_source(DATASET)
    manifest = ResultsStore(root / "two").read_manifest()
    nulls = NullSet.load(root / "two" / manifest["datasets"][DATASET]["nulls_files"][family])
    i, j = np.triu_indices(brain.n_regions, 1)
    panels = drawn[f"cge_distance_{SLUG}_{slug(family)}.png"]
    expressions = [brain.X, nulls.null_expression(brain.X, 0), nulls.worst_null_expression(brain.X)]
    stored_curves = [nulls.true_curve, nulls.curves[0], nulls.worst_curve]
    edges = np.asarray(nulls.metadata["bin_edges_mm"])
    for panel, expression, curve in zip(panels, expressions, stored_curves, strict=True):
        # the scatter holds all 780 pairs (fewer than max_points), in pair order: the CGE of that expression
        offsets = panel["collections"][0]
        np.testing.assert_array_equal(offsets[:, 0], brain.distances[i, j])
        np.testing.assert_allclose(offsets[:, 1], np.corrcoef(expression)[i, j], rtol=0, atol=1e-12)
        # their mean per distance bin is the curve score_nulls computed (and the selection used)
        which = np.digitize(offsets[:, 0], edges[1:-1])
        means = np.array([offsets[which == b, 1].mean() for b in np.unique(which)])
        np.testing.assert_allclose(means, curve, rtol=0, atol=1e-10)


def test_report_command_prints_both_pages(tmp_path, monkeypatch, capsys):
    written = {}

    def fake(results, out=None, **options):
        written.update(results=results, out=out, options=options)
        return Path(out) / "report.md"

    monkeypatch.setattr("spatiomol.reports.report.write_report", fake)
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "rep"), "--permutations", "50"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"report: {tmp_path / 'rep' / 'report.md'}",
        f"report (HTML): {tmp_path / 'rep' / 'report.html'}",
    ]
    assert html_path(tmp_path / "rep" / "report.md") == tmp_path / "rep" / "report.html"
    assert written["options"] == {"n_permutations": 50}
    assert written["results"] == str(tmp_path / "res")


def test_four_splits_cannot_beat_any_family(tmp_path):
    """1 repeat × 4 folds (the demo's size): every true − null difference positive, still no family beaten."""
    true = np.array([0.80, 0.82, 0.79, 0.81])
    rows = [
        {
            "dataset": "d",
            "split_type": "random",
            "model": "cm",
            "input": inp,
            "null_family": family,
            "repeat": 0,
            "fold": fold,
            "null_index": 0 if inp == "null" else -1,
            "metric": "pearson",
            "stratum": "all",
            "value": value,
        }
        for inp, family, values in (("true", "", true), ("null", "cge", true - 0.5), ("null", "moran", true - 0.4))
        for fold, value in enumerate(values)
    ]
    df = pd.DataFrame(rows)
    ctx = ReportContext(
        store=ResultsStore(tmp_path),
        out=tmp_path,
        tables_dir=tmp_path,
        figures_dir=tmp_path,
        df=df,
        summary=pd.DataFrame(),
        manifest={},
        config={"repeats": 1, "folds": 4},
        n_permutations=1000,
        families=["cge", "moran"],
    )
    blocks = null_families_section(ctx, "d")
    text = " ".join(getattr(b, "text", "") for b in blocks)
    assert "n = 4 splits per comparison (1 repeat(s) × 4 folds)" in text
    assert "2/2ⁿ: 0.125 here" in text and "**With 4 splits no family can be beaten at α = 0.05.**" in text
    (bullets,) = [b for b in blocks if isinstance(b, Bullets)]
    assert bullets.items == (
        "random splits, Bilinear CM: beats none; not cge, moran (paired test: beats none; not cge, moran)",
    )
    table = pd.read_csv(tmp_path / "null_families_d.csv")
    # exact sign flips over 2^4 patterns: all four differences positive → 2/16
    assert (table["signflip_p"] == 0.125).all() and (table["rank_nulls"] == 1).all() and not table["paired_beats"].any()


def test_the_report_states_what_each_family_keeps_and_what_it_was_calibrated_against(folders):
    """The table of what each null family preserves is the families' specs, row for row."""
    from spatiomol.nulls import FAMILIES as SPECS

    root, _ = folders
    table = pd.read_csv(root / "report_two" / "tables" / f"null_families_preserve_{SLUG}.csv")
    assert table["null_family"].tolist() == FAMILIES
    for method, row in zip(("cge", "moran"), table.to_dict("records")):
        assert row["method"] == SPECS[method].description and row["keeps"] == "; ".join(SPECS[method].preserves)
    assert table["calibration of its rank verdict"].tolist() == [SPECS["cge"].calibration, SPECS["moran"].calibration]
    assert "What each null family keeps of the true expression" in (root / "report_two" / "report.md").read_text()


def _section_of(tmp_path, df: pd.DataFrame, repeats: int) -> tuple[str, Bullets, pd.DataFrame]:
    ctx = ReportContext(
        store=ResultsStore(tmp_path),
        out=tmp_path,
        tables_dir=tmp_path,
        figures_dir=tmp_path,
        df=df,
        summary=pd.DataFrame(),
        manifest={},
        config={"repeats": repeats, "folds": 4},
        n_permutations=200,
        families=["moran"],
    )
    blocks = null_families_section(ctx, "d")
    text = " ".join(getattr(b, "text", "") for b in blocks)
    (bullets,) = [b for b in blocks if isinstance(b, Bullets) and any(" splits, " in i for i in b.items)]
    return text, bullets, pd.read_csv(tmp_path / "null_families_d.csv")


def _verdict_rows(null_splits, n_nulls: int, models=("cm",), splits=("random",)) -> pd.DataFrame:
    """True runs on repeats 0–1 × 4 folds (r ≈ 0.8); null k on ``null_splits(k)`` (r ≈ 0.3)."""
    rng = np.random.default_rng(7)
    rows = []
    for model in models:
        for split in splits:
            for repeat in range(2):
                for fold in range(4):
                    rows.append((model, split, "true", "", -1, repeat, fold, 0.8 + 0.01 * rng.standard_normal()))
            for k in range(n_nulls):
                for repeat, fold in null_splits(k):
                    rows.append((model, split, "null", "moran", k, repeat, fold, 0.3 + 0.05 * rng.standard_normal()))
    columns = ["model", "split_type", "input", "null_family", "null_index", "repeat", "fold", "value"]
    return pd.DataFrame(rows, columns=columns).assign(dataset="d", metric="pearson", stratum="all")


def test_a_legacy_folder_gets_its_verdict_flagged_in_words(tmp_path):
    """Null k on the folds of repeat k only (the earlier grid): a verdict, computed the old way, flagged."""
    df = _verdict_rows(lambda k: [(k, f) for f in range(4)], n_nulls=20)
    text, bullets, table = _section_of(tmp_path, df, repeats=2)
    assert table["rank_design"].tolist() == ["one null per repeat (legacy)"]
    # the old way: the true mean over its 8 splits against each null's mean over its own repeat
    assert table["rank_splits"].tolist() == [8] and table["rank_nulls"].tolist() == [20]
    assert table["rank_p"].iloc[0] == pytest.approx(1 / 21)
    assert "**Legacy design:**" in text and "one null per repeat (legacy)" in text
    assert bullets.items == (
        "random splits, Bilinear CM: beats moran (paired test: beats moran) — rank verdict of the legacy "
        "one-null-per-repeat design (conservative, not exact)",
    )


def test_shared_folds_report_effect_interval_holm_and_its_floor(tmp_path):
    """Every null on every split: effect with its interval, Holm over the family's rows, the Holm floor in words."""
    every = [(r, f) for r in range(2) for f in range(4)]
    df = _verdict_rows(lambda k: every, n_nulls=19, models=("cm", "cm-pca"), splits=("random", "spatial"))
    text, bullets, table = _section_of(tmp_path, df, repeats=2)
    assert set(table["rank_design"]) == {"shared folds"} and (table["rank_splits"] == 8).all()
    expected = true_vs_nulls(df, family="null_family").set_index(["split_type", "model"])
    for row in table.to_dict("records"):
        ref = expected.loc[(row["split_type"], row["model"])]
        for column in ("effect", "effect_low", "effect_high", "effect_z", "p", "p_holm", "p_bh"):
            assert row[f"rank_{column}"] == pytest.approx(ref[column], rel=1e-12)
        assert row["rank_p"] == pytest.approx(1 / 20) and row["rank_p_holm"] == pytest.approx(4 / 20)
        assert row["rank_reject"] == 0.0  # Holm over 4 rows: 4/20 > 0.05
    assert "With m rows the smallest Holm p is m/(K + 1): 0.2 here." in text
    assert "**With 4 rows and K = 19 nulls no verdict can reject at α = 0.05 after Holm's adjustment**" in text
    assert "(it needs K ≥ 79)" in text and "Legacy design" not in text
    assert all(item.endswith(")") and "legacy" not in item for item in bullets.items)
