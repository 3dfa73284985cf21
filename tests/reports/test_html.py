"""report.html: one self-contained page holding report.md's tables and figures plus brain views.

The page is parsed (html.parser): every table and PNG of the Markdown report is present,
every image is an inline data URI equal to the PNG on disk, and nothing (page or the
interactive nilearn frames inside it) links outside the folder or to the network. The
brain-view numbers (strongest edges, per-region accuracy) are recomputed from the stored
predictions with scipy.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import brain as views
from spatiomol.reports.report import write_report

DATASET = "synthetic:n_regions=40,n_genes=30,rule=bilinear,decay_weight=0.3,seed=5"
SLUG = "synthetic_n_regions_40_n_genes_30_rule_b"


class Page(HTMLParser):
    """Tags with their attributes, table count, and the documents of iframe srcdoc attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.frames: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "iframe" and attributes.get("srcdoc"):
            self.frames.append(attributes["srcdoc"])


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def outside_links(page: Page) -> list[str]:
    """href/src/srcset/action values that leave the document (anything but data: URIs and #anchors)."""
    bad = []
    for _, attributes in page.tags:
        for name in ("href", "src", "srcset", "action", "data", "poster"):
            value = (attributes.get(name) or "").strip()
            if value and not (value.startswith("data:") or value.startswith("#")):
                bad.append(f"{name}={value[:80]}")
    return bad


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    results = tmp_path_factory.mktemp("html-results")
    config = ExperimentConfig(
        name="html-test",
        datasets=[DATASET],
        models=["exp-decay", "cm-pca", "cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true", "null"],
        tuning=False,
        seed=1,
        nulls={"n": 100, "top": 2, "method": "cge", "seed": 0},
    )
    assert not run_experiment(config, results, progress=False, log=lambda m: None).failed
    md = write_report(results, n_permutations=200)
    return results, md


def test_html_holds_every_table_and_figure_and_links_nowhere(html_report):
    results, md = html_report
    text = (results / "report.html").read_text(encoding="utf-8")
    page = parse(text)
    markdown = md.read_text()
    # every Markdown table is an HTML table (header row "| ... |" followed by "|---|")
    n_md_tables = len(re.findall(r"^\|.*\|\n\|(?:---\|)+$", markdown, flags=re.MULTILINE))
    assert n_md_tables >= 4 and sum(tag == "table" for tag, _ in page.tags) == n_md_tables
    # every figure of report.md (and every PNG written) is inlined byte for byte
    linked = re.findall(r"\]\((figures/[^)]+\.png)\)", markdown)
    pngs = sorted(p.relative_to(results).as_posix() for p in (results / "figures").glob("*.png"))
    assert sorted(linked) == pngs
    assert {p.split("/")[1].split("_")[0] for p in pngs} >= {"connectomes", "brain", "parameters", "cge"}
    inlined = [a["src"] for tag, a in page.tags if tag == "img"]
    assert len(inlined) == len(pngs)
    decoded = {base64.b64decode(src.split(",", 1)[1]) for src in inlined}
    assert decoded == {(results / p).read_bytes() for p in pngs}
    assert all(src.startswith("data:image/png;base64,") for src in inlined)
    # nothing in the page or its interactive frames points outside: no http(s), no file path
    assert outside_links(page) == []
    assert len(page.frames) == 3  # observed, predicted from true, predicted from null
    for frame in page.frames:
        inner = parse(frame)
        assert outside_links(inner) == [], outside_links(inner)[:3]
        assert any(tag == "script" for tag, _ in inner.tags) and "Plotly" in frame
        assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=[\"']?(?:https?:)?//", frame)


def test_brain_views_show_the_stored_predictions(html_report):
    results, _ = html_report
    store = ResultsStore(results)
    df = store.load()
    # the glass-brain split: repeat 0 fold 0 of the best model with null runs (cm-pca or cm)
    means = (
        df[(df.input == "true") & (df.metric == "pearson") & (df.stratum == "all") & df.model.isin(["cm", "cm-pca"])]
        .groupby("model")["value"]
        .mean()
    )
    model = means.idxmax()
    rid = {
        inp: df.loc[(df.model == model) & (df.input == inp) & (df.repeat == 0) & (df.fold == 0), "run_id"].iloc[0]
        for inp in ("true", "null")
    }
    true, null = store.load_predictions(rid["true"]), store.load_predictions(rid["null"])
    edges = pd.read_csv(results / "tables" / f"brain_edges_{SLUG}_random.csv")
    from spatiomol.data.sources import resolve_source

    labels = resolve_source(DATASET).labels
    key = {(labels[a], labels[b]): k for k, (a, b) in enumerate(zip(true["i"], true["j"]))}
    shown = [key[(a, b)] for a, b in zip(edges["region_i"], edges["region_j"])]
    # each panel draws its 10 strongest edges: 5% of the 45 test edges (3) is below the floor of 10
    panels = {
        "observed (test edges)": true["y_true"],
        "predicted, true expression": true["y_pred"],
        "predicted, null expression": null["y_pred"],
    }
    drawn_any = np.zeros(true["i"].size, dtype=bool)
    thresholds = []
    for title, values in panels.items():
        strongest = np.sort(np.abs(values))[::-1]
        thresholds.append((strongest[9] + strongest[10]) / 2)
        drawn = np.abs(values) > thresholds[-1]
        assert drawn.sum() == 10
        np.testing.assert_array_equal(edges[title], values[shown])
        np.testing.assert_array_equal(edges[f"drawn: {title}"], drawn[shown])
        drawn_any |= drawn
    assert sorted(shown) == list(np.flatnonzero(drawn_any))
    # one colour scale in the three interactive panels: ±(largest |value| drawn in any panel)
    vmax = max(np.abs(values).max() for values in panels.values())
    frames = parse((results / "report.html").read_text(encoding="utf-8")).frames
    for frame, threshold in zip(frames, thresholds, strict=True):
        scale = json.loads("{" + re.search(r'"line_colorscale": .*?"line_cmax": [^,}]+', frame).group(0) + "}")
        assert (scale["line_cmin"], scale["line_cmax"]) == (pytest.approx(-vmax, rel=1e-12), pytest.approx(vmax))
        # colour stops are grey exactly where |value| <= this panel's threshold
        stops = np.array([x for x, _ in scale["line_colorscale"]])
        grey = np.array([colour == "rgb(128, 128, 128)" for _, colour in scale["line_colorscale"]])
        np.testing.assert_array_equal(grey, np.abs(-vmax + 2 * vmax * stops) <= threshold)
    # per-region accuracy: scipy's Pearson r of each test region's edges, one fold per region
    accuracy = pd.read_csv(results / "tables" / f"region_accuracy_{SLUG}_random.csv")
    for m in {model, "cm", "cm-pca"} & {c[2:] for c in accuracy.columns if c.startswith("r_")}:
        expected = np.full(len(accuracy), np.nan)
        for run_id in set(df.loc[(df.model == m) & (df.input == "true"), "run_id"]):
            p = store.load_predictions(run_id)
            for region in np.unique(np.concatenate([p["i"], p["j"]])):
                mask = (p["i"] == region) | (p["j"] == region)
                expected[region] = sps.pearsonr(p["y_true"][mask], p["y_pred"][mask])[0]
        np.testing.assert_allclose(accuracy[f"r_{m}"], expected, rtol=1e-10)


def test_strong_edge_threshold_hand_cases():
    values = np.array([0.9, -0.8, 0.1, 0.5, -0.05, 0.3])
    # 5% of 6 edges is below the floor of 2: keep the 2 largest |v| (0.9, 0.8); halfway to 0.5
    assert views.strong_edge_threshold(values, fraction=0.05, minimum=2, maximum=10) == (0.65, 2)
    # 50% of 6 = 3 edges: 0.9, 0.8, 0.5; halfway to 0.3
    assert views.strong_edge_threshold(values, fraction=0.5, minimum=1, maximum=10) == (0.4, 3)
    # every edge kept: half the smallest |v|
    assert views.strong_edge_threshold(values, fraction=1.0, minimum=1, maximum=10) == (0.025, 6)
    with pytest.raises(ValueError, match="no finite edge values"):
        views.strong_edge_threshold(np.array([np.nan]))


def test_region_accuracy_matches_scipy_and_skips_thin_regions():
    rng = np.random.default_rng(0)
    i, j = np.triu_indices(6, 1)
    keep = ~((i == 0) & (j > 2))  # region 0 keeps 2 edges: too few for an r
    i, j = i[keep], j[keep]
    y_true, y_pred = rng.normal(size=i.size), rng.normal(size=i.size)
    r = views.region_accuracy(i, j, y_true, y_pred, n_regions=7)
    assert np.isnan(r[0]) and np.isnan(r[6])  # thin region; region 6 has no edge
    for region in range(1, 6):
        mask = (i == region) | (j == region)
        assert r[region] == pytest.approx(sps.pearsonr(y_true[mask], y_pred[mask])[0], abs=1e-12)


def test_a_panel_with_no_edge_above_the_threshold_is_drawn_with_its_nodes_only():
    # a null's prediction is often flat: none of its edges reaches the observed threshold
    rng = np.random.default_rng(1)
    coords = rng.normal(0.0, 40.0, size=(12, 3))
    flat = rng.normal(0.0, 0.05, size=(12, 12))
    flat = (flat + flat.T) / 2
    np.fill_diagonal(flat, 0.0)
    fig = views.draw_glass_connectomes(
        {"observed": 10 * flat, "null": flat}, coords, {"observed": 0.9, "null": 0.9}, 1.5, "t"
    )
    titles = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if "edges" in t.get_text()]
    assert "null: 0 edges, |value| > 0.90" in titles and any(t.startswith("observed: ") for t in titles)
    page = views.connectome_view_page(flat, coords, 0.9, 1.5, "null")
    assert re.search(r'"line_cmin": -1.5, "line_cmax": 1.5', page)
    assert outside_links(parse(page)) == []
