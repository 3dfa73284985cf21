"""Users' own files (readers, validation, loading): round trip, label order, YAML specs, every bad input."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from spatiomol.data.sources import resolve_source
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.data.validation import validate_files


def load_user_brain(expression, connectome, regions, subjects=None, **options):
    """The user's files through the one way in: a mapping source."""
    files = {"expression": expression, "connectome": connectome, "regions": regions}
    if subjects is not None:
        files["subjects"] = subjects
    return resolve_source(files, **options)


def _problems(paths, **kw):
    return validate_files(paths["expression"], paths["connectome"], paths["regions"], paths.get("subjects"), **kw)


def _one(problems, *fragments):
    """The single problem containing every fragment (fails listing all problems otherwise)."""
    hits = [p for p in problems if all(f in p for f in fragments)]
    assert len(hits) == 1, f"expected one problem with {fragments}, got:\n" + "\n".join(problems)
    return hits[0]


# ------------------------------------------------------------------------ good input
def test_round_trip_reproduces_the_brain(user_files, small_brain):
    assert _problems(user_files) == []
    brain = load_user_brain(
        user_files["expression"], user_files["connectome"], user_files["regions"], user_files["subjects"], name="mine"
    )
    np.testing.assert_allclose(brain.X, small_brain.X, rtol=1e-12)
    np.testing.assert_allclose(brain.Y, small_brain.Y, rtol=1e-12)
    np.testing.assert_allclose(brain.subjects, small_brain.subjects, rtol=1e-12)
    np.testing.assert_allclose(brain.coords, small_brain.coords, rtol=1e-12)
    assert list(brain.labels) == list(small_brain.labels)
    assert brain.genes == small_brain.genes
    assert brain.name == "mine" and brain.target_kind == "fc" and brain.target_scale == "r"
    files = brain.provenance["files"]
    assert files["expression"]["sha256"] == hashlib.sha256(user_files["expression"].read_bytes()).hexdigest()


def test_rows_are_matched_by_label_not_position(tmp_path, small_brain, write_files):
    paths = write_files(small_brain, tmp_path)
    perm = np.random.default_rng(0).permutation(small_brain.n_regions)
    expr = pd.read_csv(paths["expression"]).iloc[perm]
    expr.to_csv(paths["expression"], index=False)
    labels = small_brain.labels[perm]
    pd.DataFrame(small_brain.Y[np.ix_(perm, perm)], index=labels, columns=labels).to_csv(paths["connectome"])
    brain = load_user_brain(paths["expression"], paths["connectome"], paths["regions"])
    np.testing.assert_allclose(brain.X, small_brain.X, rtol=1e-12)
    np.testing.assert_allclose(brain.Y, small_brain.Y, rtol=1e-12)
    assert brain.provenance["validation"]["expression_reordered_to_regions_file"] is True


def _numeric_label_files(tmp_path, small_brain, write_files):
    """The small brain with atlas-ID labels 1..12 (assigned in a shuffled order), expression shuffled."""
    ids = np.random.default_rng(4).permutation(small_brain.n_regions) + 1
    numbered = small_brain.replace(regions=small_brain.regions.assign(label=[str(k) for k in ids]))
    paths = write_files(numbered, tmp_path)
    perm = np.random.default_rng(5).permutation(small_brain.n_regions)
    pd.read_csv(paths["expression"], dtype={"label": str}).iloc[perm].to_csv(paths["expression"], index=False)
    return numbered, paths, perm


@pytest.mark.parametrize("layout", ["both", "header", "index"])
def test_numeric_atlas_id_labels_are_read_as_labels(tmp_path, small_brain, write_files, layout):
    """Labels 1..n are numbers, yet a header row / label column holding them is labels, not data."""
    numbered, paths, _ = _numeric_label_files(tmp_path, small_brain, write_files)
    perm = np.random.default_rng(6).permutation(small_brain.n_regions)  # connectome in yet another order
    labels = numbered.labels[perm]
    shuffled = small_brain.Y[np.ix_(perm, perm)]
    if layout == "both":
        pd.DataFrame(shuffled, index=labels, columns=labels).to_csv(paths["connectome"])
    elif layout == "header":
        pd.DataFrame(shuffled, columns=labels).to_csv(paths["connectome"], index=False)
    else:
        pd.DataFrame(shuffled, index=labels).to_csv(paths["connectome"], header=False)
    assert _problems(paths) == []
    brain = load_user_brain(paths["expression"], paths["connectome"], paths["regions"])
    # independent reference: the matrix and expression of the brain the files were written from
    np.testing.assert_allclose(brain.Y, small_brain.Y, rtol=1e-12)
    np.testing.assert_allclose(brain.X, small_brain.X, rtol=1e-12)
    assert list(brain.labels) == list(numbered.labels)
    assert brain.provenance["validation"]["connectome_reordered_to_regions_file"] is True


def test_numeric_labels_in_different_row_and_column_orders_are_named(tmp_path, small_brain, write_files):
    numbered, paths, _ = _numeric_label_files(tmp_path, small_brain, write_files)
    rows = np.arange(small_brain.n_regions)
    cols = rows[::-1]
    pd.DataFrame(small_brain.Y[np.ix_(rows, cols)], index=numbered.labels[rows], columns=numbered.labels[cols]).to_csv(
        paths["connectome"]
    )
    msg = _one(_problems(paths), "connectome file", "row labels and column labels differ")
    assert str(paths["connectome"]) in msg and "same order" in msg


def test_bare_csv_and_npy_connectomes_follow_the_regions_order(tmp_path, small_brain, write_files):
    paths = write_files(small_brain, tmp_path, labelled_connectome=False)
    brain = load_user_brain(paths["expression"], paths["connectome"], paths["regions"])
    np.testing.assert_allclose(brain.Y, small_brain.Y, rtol=1e-12)
    npy = tmp_path / "connectome.npy"
    np.save(npy, small_brain.Y)
    brain = load_user_brain(paths["expression"], npy, paths["regions"])
    np.testing.assert_array_equal(brain.Y, small_brain.Y)


def test_fisher_z_connectome_with_infinite_diagonal_is_accepted(tmp_path, small_brain, write_files):
    paths = write_files(small_brain, tmp_path, labelled_connectome=False)
    z = np.arctanh(np.clip(small_brain.Y, -0.999, 0.999))
    np.fill_diagonal(z, np.inf)  # arctanh(1): the diagonal is ignored
    np.save(tmp_path / "z.npy", z)
    brain = load_user_brain(paths["expression"], tmp_path / "z.npy", paths["regions"], target_scale="fisher_z")
    assert np.all(np.diag(brain.Y) == 0.0)
    iu = np.triu_indices(small_brain.n_regions, 1)
    np.testing.assert_allclose(brain.Y[iu], z[iu])


def test_missing_network_column_defaults_to_unknown(user_files):
    pd.read_csv(user_files["regions"]).drop(columns="network").to_csv(user_files["regions"], index=False)
    brain = load_user_brain(user_files["expression"], user_files["connectome"], user_files["regions"])
    assert set(brain.network) == {"Unknown"}


def test_user_regions_without_expression_are_mirror_interpolated(user_files, small_brain):
    expr = pd.read_csv(user_files["expression"])
    expr.iloc[0, 1:] = np.nan  # region 0 (left cortex) loses its samples
    expr.to_csv(user_files["expression"], index=False)
    brain = load_user_brain(user_files["expression"], user_files["connectome"], user_files["regions"])
    record = brain.provenance["imputation"]["regions"][0]
    assert brain.provenance["expression_missing"] == [small_brain.labels[0]]
    assert record["label"] == small_brain.labels[0] and record["method"] == "mirror"
    source = list(small_brain.labels).index(record["sources"][0])
    np.testing.assert_array_equal(brain.X[0], small_brain.X[source])


def test_yaml_spec_with_relative_paths(user_files, small_brain):
    spec = {
        "expression": "expression.csv",
        "connectome": "connectome.csv",
        "regions": "regions.csv",
        "subjects": "subjects.npy",
        "name": "from-yaml",
        "target_kind": "fc",
        "target_scale": "r",
    }
    path = user_files["regions"].parent / "brain.yaml"
    path.write_text(yaml.safe_dump(spec))
    brain = resolve_source(path)
    assert brain.name == "from-yaml"
    np.testing.assert_allclose(brain.Y, small_brain.Y, rtol=1e-12)
    assert brain.subjects.shape == (3, 12, 12)


def test_yaml_spec_with_tss_gene_order(user_files, data_mirror):
    genes = ["PVALB", "NOT_A_GENE", "APOE", "GAD1", "MBP", "SST", "GFAP", "BDNF", "SNAP25"]
    expr = pd.read_csv(user_files["expression"])
    expr.columns = ["label", *genes]
    expr.to_csv(user_files["expression"], index=False)
    spec = {
        "expression": "expression.csv",
        "connectome": "connectome.csv",
        "regions": "regions.csv",
        "gene_order": "tss",
    }
    path = user_files["regions"].parent / "tss.yaml"
    path.write_text(yaml.safe_dump(spec))
    brain = resolve_source(path, mirror=data_mirror)
    # chr2, chr3, chr11, chr17, chr18, chr19, chr20, chr22 (GENCODE v27), unknown last
    assert brain.genes == ("GAD1", "SST", "BDNF", "GFAP", "MBP", "APOE", "SNAP25", "PVALB", "NOT_A_GENE")
    assert brain.provenance["gene_order"]["not_found"] == ["NOT_A_GENE"]
    np.testing.assert_array_equal(brain.X[:, 0], expr["GAD1"].to_numpy())


def test_yaml_spec_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"expression": "e.csv", "connectome": "c.csv", "regoins": "r.csv"}))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: unknown key\(s\) \['regoins'\]"):
        resolve_source(path)
    path.write_text(yaml.safe_dump({"expression": "e.csv", "connectome": "c.csv"}))
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['regions'\]"):
        resolve_source(path)
    with pytest.raises(ValueError, match="neither a bundled dataset"):
        resolve_source(tmp_path / "nothing.txt")


def test_resolve_source_names_unknown_options_and_the_accepted_ones(user_files):
    accepted = "['missing', 'gene_order', 'seed', 'mirror', 'fc_scale', 'n_neighbors']"
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"dataset 'hcp-s100' (bundled): unknown option(s) ['target_scale']; accepted options: {accepted}"
        ),
    ):
        resolve_source("hcp-s100", target_scale="fisher_z")
    spec = {"expression": "expression.csv", "connectome": "connectome.csv", "regions": "regions.csv"}
    path = user_files["regions"].parent / "opts.yaml"
    path.write_text(yaml.safe_dump(spec))
    yaml_accepted = "['name', 'target_kind', 'target_scale', 'missing', 'gene_order', 'seed', 'mirror']"
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"dataset '{path}' (yaml): unknown option(s) ['fc_scale', 'n_neigbors']; accepted options: {yaml_accepted}"
        ),
    ):
        resolve_source(path, fc_scale="fisher_z", n_neigbors=3)
    assert resolve_source(path, name="renamed").name == "renamed"  # accepted options still pass through


def test_resolve_source_accepts_a_bundled_name(data_mirror):
    brain = resolve_source("hcp-s100", mirror=data_mirror)
    assert (brain.n_regions, brain.n_genes) == (114, 810)


# ------------------------------------------------------------------- validation cases
def test_label_mismatch_between_expression_and_regions(user_files, small_brain):
    expr = pd.read_csv(user_files["expression"])
    expr.loc[[2, 5], "label"] = ["typo_A", "typo_B"]
    expr.to_csv(user_files["expression"], index=False)
    msg = _one(_problems(user_files), "expression file", str(user_files["expression"]), "do not match")
    assert "'typo_A', 'typo_B'" in msg
    assert f"'{small_brain.labels[2]}', '{small_brain.labels[5]}'" in msg
    assert str(user_files["regions"]) in msg


def test_label_mismatch_between_connectome_and_regions(user_files):
    table = pd.read_csv(user_files["connectome"], index_col=0)
    renamed = {table.index[k]: f"other_{k}" for k in range(7)}
    table.rename(index=renamed, columns=renamed).to_csv(user_files["connectome"])
    msg = _one(_problems(user_files), "connectome file", "do not match")
    assert "'other_0', 'other_1', 'other_2', 'other_3', 'other_4', ...] (7 in all)" in msg  # first few listed


def test_duplicate_labels_in_regions_and_expression(user_files, small_brain):
    regions = pd.read_csv(user_files["regions"])
    regions.loc[1, "label"] = regions.loc[0, "label"]
    regions.to_csv(user_files["regions"], index=False)
    expr = pd.read_csv(user_files["expression"])
    expr.loc[4, "label"] = expr.loc[3, "label"]
    expr.to_csv(user_files["expression"], index=False)
    problems = _problems(user_files)
    msg = _one(problems, "regions file", "field 'label' has duplicate labels")
    assert repr(small_brain.labels[0]) in msg
    msg = _one(problems, "expression file", "duplicate labels")
    assert repr(small_brain.labels[3]) in msg


def test_non_square_connectome(user_files, small_brain):
    np.save(user_files["connectome"].with_suffix(".npy"), small_brain.Y[:, :-1])
    user_files["connectome"] = user_files["connectome"].with_suffix(".npy")
    msg = _one(_problems(user_files), "connectome file", "shape (12, 11)")
    assert "expected a square" in msg


def test_non_symmetric_connectome_beyond_the_stated_tolerance(user_files, small_brain):
    Y = small_brain.Y.copy()
    scale = np.abs(Y[~np.eye(12, dtype=bool)]).max()
    Y[2, 7] += 1e-8 * scale  # within 1e-6 × max|Y|: accepted
    np.save(user_files["connectome"].with_suffix(".npy"), Y)
    user_files["connectome"] = user_files["connectome"].with_suffix(".npy")
    assert _problems(user_files) == []
    Y[2, 7] += 1e-4 * scale
    np.save(user_files["connectome"], Y)
    msg = _one(_problems(user_files), "connectome file", "not symmetric")
    assert f"at ({small_brain.labels[2]!r}, {small_brain.labels[7]!r})" in msg
    assert "tolerance 1e-6 × max |Y|" in msg


def test_non_finite_connectome_values(user_files, small_brain):
    Y = small_brain.Y.copy()
    Y[1, 4] = Y[4, 1] = np.nan
    Y[0, 0] = np.nan  # diagonal: ignored, not a problem
    pd.DataFrame(Y, index=small_brain.labels, columns=small_brain.labels).to_csv(user_files["connectome"])
    msg = _one(_problems(user_files), "connectome file", "non-finite values")
    assert f"['{small_brain.labels[1]} / {small_brain.labels[4]}'] (1 in all)" in msg


def test_non_finite_coordinates(user_files, small_brain):
    regions = pd.read_csv(user_files["regions"])
    regions.loc[3, "y"] = np.nan
    regions.loc[6, "z"] = np.inf
    regions.to_csv(user_files["regions"], index=False)
    msg = _one(_problems(user_files), "regions file", "fields 'x', 'y', 'z'")
    assert repr(small_brain.labels[3]) in msg and repr(small_brain.labels[6]) in msg and "(2 in all)" in msg


def test_constant_genes_are_named(user_files):
    expr = pd.read_csv(user_files["expression"])
    expr["GENE0002"] = 0.5
    expr["GENE0007"] = 0.25
    expr.to_csv(user_files["expression"], index=False)
    msg = _one(_problems(user_files), "expression file", "constant genes")
    assert "['GENE0002', 'GENE0007'] (2 in all)" in msg


def test_fewer_than_8_regions(tmp_path, write_files):
    brain = make_synthetic_brain(n_regions=8, n_genes=5, seed=1).subset_regions(np.arange(6))
    paths = write_files(brain, tmp_path)
    msg = _one(_problems(paths), "regions file", "6 regions")
    assert "at least 8" in msg


def test_subject_stack_shape_mismatch(user_files, small_brain):
    np.save(user_files["subjects"], small_brain.subjects[:, :11, :11])
    msg = _one(_problems(user_files), "subjects file", "(3, 11, 11)")
    assert "expected (n_subjects, 12, 12)" in msg


def test_unknown_hemisphere_and_structure_values(user_files):
    regions = pd.read_csv(user_files["regions"])
    regions.loc[0, "hemisphere"] = "left"
    regions.loc[1, "structure"] = "brainstem"
    regions.to_csv(user_files["regions"], index=False)
    problems = _problems(user_files)
    msg = _one(problems, "regions file", "field 'hemisphere'")
    assert "['left']" in msg and "['L', 'R', 'B']" in msg
    msg = _one(problems, "regions file", "field 'structure'")
    assert "['brainstem']" in msg and "['cortex', 'subcortex', 'cerebellum']" in msg


def test_missing_region_columns(user_files):
    pd.read_csv(user_files["regions"]).drop(columns=["z", "hemisphere"]).to_csv(user_files["regions"], index=False)
    msg = _one(_problems(user_files), "regions file", "missing column(s)")
    assert "['hemisphere', 'z']" in msg


def test_r_scale_values_outside_unit_interval(user_files, small_brain):
    Y = small_brain.Y * 3.0
    pd.DataFrame(Y, index=small_brain.labels, columns=small_brain.labels).to_csv(user_files["connectome"])
    _one(_problems(user_files), "connectome file", "outside [-1, 1]")
    assert _problems(user_files, target_scale="fisher_z") == []


def test_non_finite_subject_values(user_files, small_brain):
    stack = small_brain.subjects.copy()
    stack[1, 2, 3] = stack[1, 3, 2] = np.inf
    np.save(user_files["subjects"], stack)
    _one(_problems(user_files), "subjects file", "(subject 1)", "non-finite")


def test_partly_missing_and_non_numeric_expression(user_files, small_brain):
    expr = pd.read_csv(user_files["expression"]).astype(object)
    expr.iloc[2, 3] = np.nan
    expr.iloc[5, 4] = "high"
    expr.to_csv(user_files["expression"], index=False)
    problems = _problems(user_files)
    _one(problems, "expression file", "some genes missing", repr(small_brain.labels[2]))
    _one(problems, "expression file", "non-numeric", f"{small_brain.labels[5]}/GENE0003")


def test_every_problem_is_reported_and_loading_raises_them_all(user_files, small_brain):
    regions = pd.read_csv(user_files["regions"])
    regions.loc[0, "hemisphere"] = "X"
    regions.loc[2, "x"] = np.nan
    regions.to_csv(user_files["regions"], index=False)
    expr = pd.read_csv(user_files["expression"])
    expr["GENE0001"] = 1.0
    expr.to_csv(user_files["expression"], index=False)
    np.save(user_files["subjects"], small_brain.subjects[:, :5, :5])
    problems = _problems(user_files)
    assert len(problems) == 4, problems
    with pytest.raises(ValueError, match=r"4 problem\(s\) in the input files") as err:
        load_user_brain(
            user_files["expression"], user_files["connectome"], user_files["regions"], user_files["subjects"]
        )
    for p in problems:
        assert p in str(err.value)


def test_missing_files_are_named(tmp_path):
    problems = validate_files(tmp_path / "e.csv", tmp_path / "c.csv", tmp_path / "r.csv")
    assert len(problems) == 3
    assert all("does not exist" in p for p in problems)
    assert any(str(tmp_path / "c.csv") in p and p.startswith("connectome file") for p in problems)
