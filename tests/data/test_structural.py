"""Structural connectivity as an input (issue 27): the embedding against scipy's eigenvectors,
the bundled pairing, a user's SC file and its errors, and the models that read it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import linalg

from spatiomol.data.datasets import load_dataset
from spatiomol.data.sources import resolve_source
from spatiomol.data.structural import structural_affinity, structural_embedding, structural_features
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment
from spatiomol.models import registry
from spatiomol.models.bilinear import ConnectomeModel


def _weighted_graph(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.gamma(2.0, 1.0, size=(n, n)) * (rng.random((n, n)) < 0.5)
    W = np.triu(W, 1)
    return W + W.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_embedding_is_the_normalised_laplacian_eigenvectors(seed):
    """Reference: scipy's eigh of L = I − D^-1/2 W D^-1/2; components k = 1..m are its
    eigenvectors divided by √degree (scikit-learn's scaling), here compared after both are
    standardised, up to sign."""
    W = _weighted_graph(30, seed)
    degree = W.sum(axis=1)
    L = np.eye(30) - W / np.sqrt(np.outer(degree, degree))
    values, vectors = linalg.eigh(L)
    assert np.all(np.diff(values[:6]) > 1e-6)  # distinct: each component is defined up to sign
    reference = vectors[:, 1:6] / np.sqrt(degree)[:, None]
    reference = (reference - reference.mean(0)) / reference.std(0)
    ours = structural_embedding(W, 5, seed=0)
    np.testing.assert_allclose(ours.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(ours.std(0), 1, atol=1e-12)
    for k in range(5):
        assert abs(np.corrcoef(ours[:, k], reference[:, k])[0, 1]) > 0.9999


def test_affinity_drops_negative_entries_and_the_diagonal():
    S = np.array([[5.0, -0.5, 2.0], [-0.5, 5.0, 1.0], [2.0, 1.0, 5.0]])
    np.testing.assert_array_equal(structural_affinity(S), [[0, 0, 2], [0, 0, 1], [2, 1, 0]])
    with pytest.raises(ValueError, match="between 1 and 2"):
        structural_embedding(S, 3)


def test_bundled_functional_datasets_carry_their_sc(data_mirror):
    from spatiomol.data.readers import read_connectome

    brain = load_dataset("hcp-s100", mirror=data_mirror)
    _, sc = read_connectome(data_mirror / "enigma_hcp/strucMatrix_with_sctx_schaefer_100.csv")
    np.testing.assert_array_equal(brain.structural, sc)
    assert load_dataset("hcp-s100-sc", mirror=data_mirror).structural is None  # SC is that dataset's target
    subset = brain.subset_regions(np.arange(10, 40))
    np.testing.assert_array_equal(subset.structural, sc[10:40, 10:40])
    features = structural_features(brain, 10, raw_row=True)
    assert features.shape == (114, 10 + 114)
    np.testing.assert_allclose(features[:, 10:], np.clip(sc, 0, None) / sc.max())


def _user_yaml(tmp_path, brain, write_files, sc: pd.DataFrame | np.ndarray):
    paths = write_files(brain, tmp_path / "user")
    sc_path = tmp_path / "user" / "sc.csv"
    (sc if isinstance(sc, pd.DataFrame) else pd.DataFrame(sc, index=brain.labels, columns=brain.labels)).to_csv(sc_path)
    spec = {k: v.name for k, v in paths.items()} | {"structural": "sc.csv"}
    path = tmp_path / "user" / "data.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, sc_path


def test_a_users_sc_file_is_read_in_the_regions_order(tmp_path, small_brain, write_files):
    sc = small_brain.structural
    order = np.arange(small_brain.n_regions)[::-1]
    shuffled = pd.DataFrame(
        sc[np.ix_(order, order)], index=small_brain.labels[order], columns=small_brain.labels[order]
    )
    path, _ = _user_yaml(tmp_path, small_brain, write_files, shuffled)
    brain = resolve_source(str(path))
    np.testing.assert_allclose(brain.structural, sc)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda S, labels: pd.DataFrame(S[:-1, :-1], index=labels[:-1], columns=labels[:-1]),
            "region labels do not match",
        ),
        (
            lambda S, labels: pd.DataFrame(S, index=[f"x{k}" for k in range(len(S))], columns=labels),
            "region labels do not match",
        ),
        (
            lambda S, labels: pd.DataFrame(np.where(np.eye(len(S))[::-1] > 0, np.nan, S), index=labels, columns=labels),
            "non-finite values",
        ),
        (
            lambda S, labels: pd.DataFrame(S + np.triu(np.ones_like(S), 1), index=labels, columns=labels),
            "not symmetric",
        ),
    ],
    ids=["wrong shape", "labels", "NaN", "asymmetric"],
)
def test_bad_sc_input_is_an_error_naming_the_file(tmp_path, small_brain, write_files, edit, message):
    sc = edit(small_brain.structural.copy(), small_brain.labels)
    path, sc_path = _user_yaml(tmp_path, small_brain, write_files, sc)
    with pytest.raises(ValueError, match=rf"structural file {sc_path}.*{message}"):
        resolve_source(str(path))


def test_the_sc_connectome_model_is_the_cm_on_sc_features():
    """Hand-worked equivalence: cm-sc equals the expression CM fitted on a brain whose X is
    the SC embedding (the same feature map, solver and penalty)."""
    brain = make_synthetic_brain(40, 12, seed=4)
    train = np.arange(0, 40, 2)
    sc_model = registry.make_model("cm-sc").fit(brain, train)
    as_genes = brain.replace(X=structural_features(brain, 10), genes=tuple(f"C{k}" for k in range(10)))
    reference = ConnectomeModel(features="genes").fit(as_genes, train)
    i, j = np.triu_indices(40, 1)
    np.testing.assert_allclose(sc_model.predict(brain, i, j), reference.predict(as_genes, i, j), atol=1e-10)
    assert not sc_model._reads_expression()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_sc_mlp_reads_sc_and_learns_a_planted_sc_rule(seed):
    """A target that is a function of SC alone (its embedding's first component, pairwise
    product), with expression replaced by spatially unstructured noise: the SC-only MLP
    learns it and the expression MLP cannot, on every seed."""
    brain = make_synthetic_brain(60, 12, seed=seed)
    z = structural_features(brain, 3)[:, 0]
    Y = np.outer(z, z) / 4.0
    np.fill_diagonal(Y, 1.0)
    rng = np.random.default_rng(seed)
    brain = brain.replace(Y=Y, X=rng.random(brain.X.shape))
    train, test = np.sort(rng.permutation(60)[:45]), None
    test = np.setdiff1d(np.arange(60), train)
    i, j = np.array([(a, b) for a in test for b in test if a < b]).T
    params = {"epochs": 60, "seed": seed, "structural_components": 3, "hidden_dims": [64, 32]}
    sc_r = np.corrcoef(registry.make_model("mlp-sc", **params).fit(brain, train).predict(brain, i, j), Y[i, j])[0, 1]
    expr_params = {k: v for k, v in params.items() if k != "structural_components"}
    ex_r = np.corrcoef(registry.make_model("mlp", **expr_params).fit(brain, train).predict(brain, i, j), Y[i, j])[0, 1]
    assert sc_r > 0.8 and sc_r > ex_r + 0.3, (sc_r, ex_r)


def test_a_saved_sc_mlp_predicts_the_same(tmp_path):
    brain = make_synthetic_brain(30, 8, seed=2)
    model = registry.make_model("mlp-coords-sc", epochs=3, structural_raw_row=True).fit(brain, np.arange(20))
    path = model.save(tmp_path / "m.pt")
    loaded = type(model).load(path)
    i, j = np.triu_indices(30, 1)
    np.testing.assert_allclose(loaded.predict(brain, i, j), model.predict(brain, i, j), atol=1e-6)


def test_a_model_reading_sc_on_a_dataset_without_it_is_refused(tmp_path, data_mirror):
    config = ExperimentConfig(name="x", datasets=["hcp-s100-sc"], models=["mlp-sc"], inputs=["true"], repeats=1)
    with pytest.raises(
        ValueError, match=r"\['mlp-sc'\] read structural connectivity, but dataset 'hcp-s100-sc' has none"
    ):
        run_experiment(config, tmp_path, progress=False)


def test_validate_command_checks_an_sc_file(tmp_path, small_brain, write_files, capsys):
    from spatiomol.cli.main import main

    paths = write_files(small_brain, tmp_path / "user")
    bad = small_brain.structural + np.triu(np.ones_like(small_brain.structural), 1)
    sc = tmp_path / "sc.csv"
    pd.DataFrame(bad, index=small_brain.labels, columns=small_brain.labels).to_csv(sc)
    argv = ["validate", "--expression", str(paths["expression"]), "--connectome", str(paths["connectome"])]
    argv += ["--regions", str(paths["regions"]), "--structural", str(sc)]
    assert main(argv) == 1
    assert f"structural file {sc}: matrix is not symmetric" in capsys.readouterr().out


def test_sc_hyperparameters_leave_the_stored_runs_of_other_models_current():
    """Adding the SC hyperparameters (off by default) must not re-key the runs of models that
    do not use them: their digest is that of the search space without those keys."""
    from spatiomol.hashing import json_sha256

    for name in ("mlp", "mlp-coords", "mlp-coords-only", "cm", "cm-pca"):
        default, grid = registry.search_space(name)
        assert set(registry.SC_HYPERPARAMETERS) & set(default)  # the keys exist, switched off
        without = {k: v for k, v in default.items() if k not in registry.SC_HYPERPARAMETERS}
        assert registry.search_space_digest(name) == json_sha256((without, grid))[:16]
    assert registry.search_space_digest("mlp-sc") != registry.search_space_digest("mlp-coords-only")
    assert registry.search_space_digest("cm-sc") != registry.search_space_digest("cm")


@pytest.mark.slow
def test_sc_inputs_and_held_out_splits_run_end_to_end_on_a_user_yaml_and_a_bundled_dataset(
    tmp_path, small_brain, write_files, data_mirror
):
    """`spatiomol run` and `spatiomol report` with SC-reading models on held-out splits: a
    user's YAML with an SC file, and hcp-s100 with its bundled SC."""
    from spatiomol.cli.main import main
    from spatiomol.experiments.store import ResultsStore

    brain = make_synthetic_brain(n_regions=24, n_genes=9, seed=3)
    path, _ = _user_yaml(tmp_path, brain, write_files, brain.structural)
    for dataset, splits in ((str(path), ["random", "hemisphere", "structure"]), ("hcp-s100", ["network", "structure"])):
        out = tmp_path / f"run-{len(splits)}"
        config = {
            "name": "sc-e2e",
            "datasets": [dataset],
            "models": ["cm-sc", "cm", "mlp-sc"],
            "splits": splits,
            "repeats": 1,
            "folds": 4,
            "inputs": ["true"],
            "tuning": False,
            "model_params": {"mlp-sc": {"epochs": 2}},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        assert main(["run", str(tmp_path / "config.yaml"), "--out", str(out), "--no-progress"]) == 0
        df = ResultsStore(out).load()
        assert set(df["model"]) == {"cm-sc", "cm", "mlp-sc"} and set(df["split_type"]) == set(splits)
        assert main(["report", str(out)]) == 0
        text = (out / "report.md").read_text()
        assert "Bilinear CM (SC features)" in text and "MLP (SC only)" in text


def test_transfer_refuses_a_model_reading_sc():
    from spatiomol.experiments.transfer import transfer_specs

    with pytest.raises(ValueError, match="'mlp-sc' reads structural-connectivity features"):
        transfer_specs([("hcp-s100", "hcp-s200")], "mlp-sc")


def test_an_isolated_region_is_named():
    brain = make_synthetic_brain(20, 6, seed=1)
    S = brain.structural.copy()
    S[3, :] = S[:, 3] = 0.0
    with pytest.raises(ValueError, match=r"field 'structural' has regions without any positive connection"):
        structural_features(brain.replace(structural=S), 5)
