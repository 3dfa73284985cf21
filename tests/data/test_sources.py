"""Dataset sources: the three kinds, the content-keyed cache, and splitting source lists."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from spatiomol.data import sources
from spatiomol.data.bundled_files import dataset_files, registry
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import order_genes
from spatiomol.data.sources import SYNTHETIC_PREFIX, resolve_source, source_digest, split_source_list
from spatiomol.data.synthetic import make_synthetic_brain


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """Each test starts with an empty brain cache (and leaves the module's cache alone)."""
    monkeypatch.setattr(sources, "_BRAINS", type(sources._BRAINS)())


def _write_yaml(paths, name: str) -> str:
    folder = paths["regions"].parent
    spec = {"expression": "expression.csv", "connectome": "connectome.csv", "regions": "regions.csv", "name": name}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


# ------------------------------------------------------------------------- synthetic
def test_synthetic_source_is_make_synthetic_brain_with_its_arguments():
    source = "synthetic:n_regions=20,n_genes=10,seed=4,signal_scale=0.5"
    brain = resolve_source(source)
    expected = make_synthetic_brain(n_regions=20, n_genes=10, seed=4, signal_scale=0.5)
    assert brain.name == source  # name defaults to the source string
    np.testing.assert_array_equal(brain.X, expected.X)
    np.testing.assert_array_equal(brain.Y, expected.Y)
    assert resolve_source(source) is brain


def test_synthetic_gene_order_is_order_genes_of_the_as_given_brain():
    source = "synthetic:n_regions=20,n_genes=10,seed=4"
    ordered = resolve_source(source, gene_order="mean_expression")
    reference = order_genes(make_synthetic_brain(n_regions=20, n_genes=10, seed=4), "mean_expression")
    assert ordered.genes == reference.genes
    np.testing.assert_array_equal(ordered.X, reference.X)
    assert resolve_source(source) is not ordered  # gene order is part of the cache key


def test_synthetic_digest_is_of_the_parsed_spec_not_the_spelling():
    a = source_digest("synthetic:n_regions=20,seed=4,name=s")
    assert a == source_digest("synthetic: seed=4 , n_regions=20,name=s")  # order and spaces
    assert a == source_digest("synthetic:n_regions=20,seed=4,name=s,rank=3")  # a default spelled out
    assert a != source_digest("synthetic:n_regions=20,seed=5,name=s")
    assert len(a) == 64 and int(a, 16) >= 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("synthetic:n_regions", r"'synthetic:n_regions'.*got item 'n_regions'"),
        ("synthetic:n_regions=20,n_gens=5", r"'synthetic:n_regions=20,n_gens=5': item 'n_gens=5': unknown argument"),
        ("synthetic:seed=1,seed=2", r"item 'seed=2': argument 'seed' given twice"),
        ("synthetic:rule=quadratic", r"'synthetic:rule=quadratic'"),
    ],
)
def test_malformed_synthetic_specs_name_the_source_and_item(source, message):
    with pytest.raises(ValueError, match=message):
        resolve_source(source)


def test_unknown_source_and_gene_order_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'hcp-s999' is neither a bundled dataset"):
        resolve_source("hcp-s999")
    with pytest.raises(ValueError, match=r"gene_order must be one of .*got 'alphabetical'"):
        resolve_source(f"{SYNTHETIC_PREFIX}n_regions=20", gene_order="alphabetical")


# --------------------------------------------------------------------------- bundled
def test_bundled_source_is_load_dataset_and_its_digest_follows_the_registry(data_mirror, monkeypatch):
    brain = resolve_source("hcp-s100")
    expected = load_dataset("hcp-s100")
    np.testing.assert_array_equal(brain.X, expected.X)
    np.testing.assert_array_equal(brain.Y, expected.Y)
    assert brain.genes == expected.genes
    assert resolve_source("hcp-s100") is brain

    before = source_digest("hcp-s100")
    assert before != source_digest("hcp-s100-sc")
    changed = {**registry(), "files": {k: dict(v) for k, v in registry()["files"].items()}}
    key = dataset_files("hcp-s100")["expression"]
    changed["files"][key]["sha256"] = "0" * 64  # a new version of the expression file
    monkeypatch.setattr(sources, "registry", lambda: changed)
    assert source_digest("hcp-s100") != before


# ----------------------------------------------------------------------- user YAML
def test_editing_a_user_csv_gives_the_new_brain_in_the_same_process(tmp_path, small_brain, write_files):
    edited_paths = write_files(small_brain, tmp_path / "edited")
    other_paths = write_files(small_brain, tmp_path / "other")
    edited, other = _write_yaml(edited_paths, "edited"), _write_yaml(other_paths, "other")

    first = resolve_source(edited)
    first_other = resolve_source(other)
    digest = source_digest(edited)
    np.testing.assert_allclose(first.X, small_brain.X, rtol=1e-12)

    # the user changes one expression value, as in a notebook between two runs
    table = pd.read_csv(edited_paths["expression"])
    gene = small_brain.genes[4]
    table.loc[2, gene] = 7.25
    table.to_csv(edited_paths["expression"], index=False)
    stat = os.stat(edited_paths["expression"])
    # coarse file-system clocks can give an edit within the same tick the old mtime
    os.utime(edited_paths["expression"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    second = resolve_source(edited)
    assert second is not first
    assert source_digest(edited) != digest
    assert second.X[2, 4] == 7.25
    assert first.X[2, 4] == pytest.approx(small_brain.X[2, 4], rel=1e-12)  # the old brain is untouched
    mask = np.ones_like(second.X, dtype=bool)
    mask[2, 4] = False
    np.testing.assert_allclose(second.X[mask], small_brain.X[mask], rtol=1e-12)
    assert resolve_source(edited) is second
    assert resolve_source(other) is first_other  # unedited source: served from the cache


def test_editing_the_yaml_itself_changes_the_digest(user_files):
    path = _write_yaml(user_files, "spec")
    before = source_digest(path)
    assert resolve_source(path).name == "spec"
    text = open(path).read().replace("name: spec", "name: renamed")
    with open(path, "w") as handle:
        handle.write(text)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert source_digest(path) != before
    assert resolve_source(path).name == "renamed"


def test_a_yaml_naming_a_missing_file_raises_naming_it(user_files):
    path = _write_yaml(user_files, "gone")
    user_files["connectome"].unlink()
    with pytest.raises(ValueError, match=r"connectome file .*connectome.csv: does not exist"):
        resolve_source(path)


# ------------------------------------------------------------------- source lists
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hcp-s100,synthetic:n_regions=30,n_genes=20,seed=1,my.yaml",
            ["hcp-s100", "synthetic:n_regions=30,n_genes=20,seed=1", "my.yaml"],
        ),
        ("hcp-s100, hcp-s400 ,", ["hcp-s100", "hcp-s400"]),
        ("synthetic:seed=1,synthetic:seed=2,n_genes=9", ["synthetic:seed=1", "synthetic:seed=2,n_genes=9"]),
        ("synthetic:,seed=3", ["synthetic:seed=3"]),
        ("hcp-s100,seed=3", ["hcp-s100", "seed=3"]),  # key=value continues only a synthetic spec
        ("synthetic:seed=1,data/run=2.yaml", ["synthetic:seed=1", "data/run=2.yaml"]),
        ("", []),
    ],
)
def test_split_source_list_keeps_synthetic_specs_whole(text, expected):
    assert split_source_list(text) == expected
