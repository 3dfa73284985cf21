"""Every baseline runs on the real ``hcp-s400`` brain under the evaluation protocol.

One random split (75 % training regions), the dataset's default imputation, the
protocol's metrics (`spatiomol.evaluation.metrics.evaluate`). Checks: finite metrics on
the right number of test edges, symmetric predictions, parameter counts worked out from
the brain's size, and that the learned bilinear models beat the constant predictor
(training-edge mean) on test MSE — the least any model that learned something must do.
"""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.data.datasets import load_dataset
from spatiomol.evaluation.metrics import evaluate
from spatiomol.evaluation.splits import inner_validation, make_splits
from spatiomol.evaluation.tuning import select_and_fit
from spatiomol.models import registry

BASELINES = [n for n in registry.MODELS if registry.spec(n).category in ("rules", "linear")]
BILINEAR = registry.names(category="linear")


@pytest.fixture(scope="module")
def brain(data_mirror):
    return load_dataset("hcp-s400")


@pytest.fixture(scope="module")
def split(brain):
    return make_splits(brain, "random", n_repeats=1, n_folds=4, seed=0)[0]


@pytest.fixture(scope="module")
def fitted(brain, split):
    models = {}
    for name in BASELINES:
        model = registry.make_model(name)
        if name == "bilinear-lowrank":
            inner_train, val = inner_validation(brain, split.train, split.kind, seed=0)
            model.fit(brain, inner_train, val_regions=val)
        else:
            model.fit(brain, split.train)
        models[name] = model
    return models


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_runs_on_hcp_s400(name, brain, split, fitted):
    model = fitted[name]
    i, j = split.test_pairs()
    pred = model.predict(brain, i, j)
    np.testing.assert_allclose(model.predict(brain, j, i), pred, rtol=1e-10, atol=1e-12)
    rows = {r["metric"]: r for r in evaluate(brain, i, j, pred) if r["stratum"] == "all"}
    n_test = len(split.test)
    for metric in ("pearson", "mse", "r2", "geodesic"):
        assert np.isfinite(rows[metric]["value"]), metric
        assert rows[metric]["n_edges"] == n_test * (n_test - 1) // 2
    assert rows["pearson"]["value"] > 0.0
    matrix = model.predict_matrix(brain, split.test)
    np.testing.assert_allclose(matrix, matrix.T, equal_nan=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", BILINEAR)
def test_bilinear_baselines_beat_the_constant_predictor(name, brain, split, fitted):
    i, j = split.test_pairs()
    y = brain.targets(i, j)
    constant = np.mean(brain.targets(*split.train_pairs()))
    mse_model = np.mean((fitted[name].predict(brain, i, j) - y) ** 2)
    assert mse_model < np.mean((constant - y) ** 2)


@pytest.mark.slow
def test_parameter_counts_on_hcp_s400(brain, fitted):
    g = brain.n_genes
    assert fitted["cm"].n_parameters_ == fitted["cm-paper"].n_parameters_ == (g + 1) ** 2
    k_pca = fitted["cm-pca"].feature_map_.n_features_
    assert fitted["cm-pca"].n_parameters_ == (k_pca + 1) ** 2
    assert fitted["cm-pls"].n_parameters_ == g * 10 + 11**2
    assert fitted["bilinear-lowrank"].n_parameters_ == g * 10 + 10 + 1
    rules = ("cge-pca", "gaussian-kernel", "exp-decay", "exp-decay-mirrored")
    assert [fitted[n].n_parameters_ for n in rules] == [2, 3, 2, 2]


@pytest.mark.slow
def test_mirrored_decay_predicts_hcp_s400_better_than_plain(brain, split, fitted):
    """HCP's FC is strong between homotopic regions, which only mirrored distances call near:
    with the same 2 parameters the mirrored decay predicts the test edges better."""
    i, j = split.test_pairs()
    y = brain.targets(i, j)
    pred = {n: fitted[n].predict(brain, i, j) for n in ("exp-decay", "exp-decay-mirrored")}
    r = {n: np.corrcoef(p, y)[0, 1] for n, p in pred.items()}
    err = {n: np.mean((p - y) ** 2) for n, p in pred.items()}
    assert r["exp-decay-mirrored"] > r["exp-decay"] and err["exp-decay-mirrored"] < err["exp-decay"]


@pytest.mark.slow
def test_protocol_tuning_selects_from_the_yaml_grid(brain, split):
    model, params, table = select_and_fit("cm-pca", brain, split, n_configs=3, seed=0)
    _, grid = registry.search_space("cm-pca")
    assert len(table) == 4 and table["chosen"].sum() == 1
    assert params["alpha"] in grid["alpha"] and params["n_components"] in grid["n_components"]
    assert np.isfinite(table["val_mse"]).all()
    assert model.get_params()["alpha"] == params["alpha"]
