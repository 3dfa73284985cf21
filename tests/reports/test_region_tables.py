"""A results folder keeps the region table its runs used: the report's brain views and
per-region tables come from it, so a folder moved away from its dataset's files reports
the same; a folder from before region tables falls back to the dataset, and says so
when that fails too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import REGION_TABLE_COLUMNS, ResultsStore
from spatiomol.reports.report import write_report

#: figures drawn from the dataset's expression (not from stored results)
NEEDS_EXPRESSION = "cge_distance_"


def write_dataset(folder: Path):
    """A user's dataset (CSV files named by a YAML) made from a synthetic brain; → (YAML path, brain)."""
    brain = make_synthetic_brain(40, 30, rule="bilinear", decay_weight=0.3, seed=3)
    folder.mkdir(parents=True)
    expression = pd.DataFrame(brain.X, columns=list(brain.genes))
    expression.insert(0, "label", brain.labels)
    expression.to_csv(folder / "expression.csv", index=False, float_format="%.17g")
    pd.DataFrame(brain.Y).to_csv(folder / "connectome.csv", index=False, header=False, float_format="%.17g")
    brain.regions.to_csv(folder / "regions.csv", index=False)
    spec = folder / "mine.yaml"
    names = {"name": "mine", "expression": "expression.csv", "connectome": "connectome.csv", "regions": "regions.csv"}
    spec.write_text(yaml.safe_dump(names))
    return str(spec), brain


def report_files(results: Path, out: Path) -> tuple[str, set[str], dict[str, bytes]]:
    """Write the report of ``results`` into ``out``; → (report.md, figure names, table bytes)."""
    text = write_report(results, out, n_permutations=200, html=False).read_text()
    figures = {p.name for p in (out / "figures").glob("*.png")}
    tables = {p.name: p.read_bytes() for p in (out / "tables").glob("*.csv")}
    return text, figures, tables


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    dataset, brain = write_dataset(root / "data")
    config = ExperimentConfig(
        name="regions-test",
        datasets=[dataset],
        models=["exp-decay", "cm"],
        splits=["random"],
        repeats=1,
        folds=4,
        inputs=["true", "null"],
        tuning=False,
        seed=1,
        nulls={"n": 100, "top": 1, "method": "cge", "seed": 0},
    )
    out = root / "results"
    assert not run_experiment(config, out, progress=False, log=lambda m: None).failed
    return root, dataset, brain, out


def test_the_folder_stores_the_region_table_it_used(grid):
    _, dataset, brain, out = grid
    store = ResultsStore(out)
    entry = store.read_manifest()["datasets"][dataset]
    assert entry["regions_file"].startswith("regions/") and store.recorded_path(entry["regions_file"]).exists()
    table = store.load_regions(dataset)
    assert tuple(table.columns) == REGION_TABLE_COLUMNS
    np.testing.assert_array_equal(table["region"], np.arange(brain.n_regions))
    pd.testing.assert_frame_equal(table.drop(columns="region"), brain.regions, check_dtype=False)


def test_the_report_needs_no_dataset_files_for_its_brain_views(grid, tmp_path):
    root, dataset, _, out = grid
    old = tmp_path / "old"  # a folder from before region tables were stored
    shutil.copytree(out, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["datasets"][dataset]["regions_file"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(old / "regions")

    text, figures, tables = report_files(out, tmp_path / "before")
    assert any(f.startswith("brain_connectome_") for f in figures)
    assert any(f.startswith("brain_accuracy_") for f in figures)
    assert any(t.startswith("region_accuracy_") for t in tables) and any(t.startswith("brain_edges_") for t in tables)
    assert "dropped" not in text
    # an old folder falls back to the dataset: the same brain views and tables
    _, old_figures, old_tables = report_files(old, tmp_path / "old-report")
    assert (old_figures, old_tables) == (figures, tables)

    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    shutil.rmtree(root / "data")  # the dataset's files are gone
    moved_text, moved_figures, moved_tables = report_files(moved, tmp_path / "after")
    assert moved_tables == tables
    assert moved_figures == {f for f in figures if not f.startswith(NEEDS_EXPRESSION)}
    assert "Brain views" not in moved_text and "CGE–distance figure of" in moved_text  # said, not silent

    # no stored table and no dataset: the report says the brain views were dropped, and why
    gone_text, gone_figures, gone_tables = report_files(old, tmp_path / "gone")
    assert not any(f.startswith(("brain_connectome_", "brain_accuracy_")) for f in gone_figures)
    assert not any(t.startswith(("region_accuracy_", "brain_edges_")) for t in gone_tables)
    assert f"**Brain views of {dataset} (random splits) dropped:**" in gone_text
    assert "'datasets." in gone_text and "regions_file' is absent" in gone_text
    assert "could not be loaded" in gone_text
