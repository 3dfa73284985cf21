"""Nested hyperparameter selection with a small ridge model defined here (no model modules needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from spatiomol.data.brain import pairs_within
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.splits import make_splits
from spatiomol.evaluation.tuning import sample_configs, select_and_fit
from spatiomol.models import registry
from spatiomol.models.base import ConnectivityModel

#: every (train, val) region set passed to AbsDiffRidge.fit, for the leakage checks
FIT_CALLS: list[tuple[np.ndarray, np.ndarray | None]] = []


class AbsDiffRidge(ConnectivityModel):
    """Ridge regression of connectivity on |x_i - x_j| over the first ``n_features`` genes."""

    def __init__(self, alpha: float = 10.0, n_features: int = 30, fail_above: float | None = None):
        self.alpha = alpha
        self.n_features = n_features
        self.fail_above = fail_above

    @classmethod
    def config(cls):
        return {
            "default": {"alpha": 10.0, "n_features": 30, "fail_above": None},
            "grid": {"alpha": [1e-3, 1e-1, 10.0, 1e3, 1e5], "n_features": [5, 30]},
        }

    def _features(self, brain, i, j):
        x = brain.X[:, : self.n_features]
        return np.abs(x[i] - x[j])

    def _fit(self, brain, train, val):
        FIT_CALLS.append((train.copy(), None if val is None else val.copy()))
        i, j, y = self.training_pairs(brain, train)
        self.ridge_ = Ridge(alpha=self.alpha).fit(self._features(brain, i, j), y)
        self.n_parameters_ = self.n_features + 1

    def _predict_pairs(self, brain, i, j):
        pred = self.ridge_.predict(self._features(brain, i, j))
        if self.fail_above is not None and self.alpha > self.fail_above:
            pred[0] = np.nan  # a diverged fit
        return pred


def closed_form_ridge(features: np.ndarray, y: np.ndarray, alpha: float):
    """Ridge with an unpenalised intercept: centre, solve (XᵀX + αI) w = Xᵀy."""
    x_mean, y_mean = features.mean(0), y.mean()
    xc = features - x_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(xc.shape[1]), xc.T @ (y - y_mean))
    return lambda f: (f - x_mean) @ w + y_mean


@pytest.fixture
def registered(monkeypatch):
    spec = registry.ModelSpec("absdiff-ridge", f"{__name__}:AbsDiffRidge", "AbsDiff ridge", "linear", True, False)
    monkeypatch.setitem(registry.MODELS, "absdiff-ridge", spec)
    spec5 = registry.ModelSpec(
        "absdiff-ridge-5",
        f"{__name__}:AbsDiffRidge",
        "AbsDiff ridge (5)",
        "linear",
        True,
        False,
        fixed={"n_features": 5},
    )
    monkeypatch.setitem(registry.MODELS, "absdiff-ridge-5", spec5)
    FIT_CALLS.clear()
    yield
    FIT_CALLS.clear()


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(40, 30, rule="bilinear", signal_scale=0.3, noise=0.02, seed=11)


@pytest.mark.parametrize("kind", ["random", "spatial"])
def test_select_and_fit_scores_every_candidate_and_refits_the_best(registered, brain, kind):
    split = make_splits(brain, kind, n_repeats=1, seed=4)[1]
    model, params, table = select_and_fit("absdiff-ridge", brain, split, n_configs=5, seed=7)

    # App. A.3: 5 sampled configurations plus the default, then one refit
    assert len(table) == 6 and len(FIT_CALLS) == 7
    assert table["is_default"].tolist() == [True, False, False, False, False, False]
    configs = [json.loads(p) for p in table["params"]]
    assert configs[0] == {"alpha": 10.0, "n_features": 30, "fail_above": None}
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 6

    # no leakage: test regions never reach fit; validation regions never train
    test = set(split.test.tolist())
    for train, val in FIT_CALLS:
        assert not test & set(train.tolist())
        assert val is None or not test & set(val.tolist())
    inner_train, val = FIT_CALLS[0]
    assert all(np.array_equal(t, inner_train) and np.array_equal(v, val) for t, v in FIT_CALLS[:6])
    assert np.array_equal(np.union1d(inner_train, val), split.train) and not np.intersect1d(inner_train, val).size
    assert np.array_equal(FIT_CALLS[6][0], split.train) and FIT_CALLS[6][1] is None
    if kind == "spatial":
        d = brain.distances
        assert any(d[s, val].max() <= d[s, inner_train].min() for s in val)

    # each validation MSE recomputed by a closed-form ridge on the same regions
    ti, tj = pairs_within(inner_train)
    vi, vj = pairs_within(val)
    assert (table["n_val_edges"] == vi.size).all()
    for config, got in zip(configs, table["val_mse"]):
        x = brain.X[:, : config["n_features"]]
        predict = closed_form_ridge(np.abs(x[ti] - x[tj]), brain.targets(ti, tj), config["alpha"])
        expected = np.mean((predict(np.abs(x[vi] - x[vj])) - brain.targets(vi, vj)) ** 2)
        assert got == pytest.approx(expected, rel=1e-8)

    best = int(np.argmin(table["val_mse"]))
    assert table["chosen"].tolist() == [k == best for k in range(6)]
    assert params == configs[best]
    assert (model.alpha, model.n_features) == (params["alpha"], params["n_features"])
    # the returned model is the winner refitted on every training region
    ai, aj = pairs_within(split.train)
    x = brain.X[:, : params["n_features"]]
    predict = closed_form_ridge(np.abs(x[ai] - x[aj]), brain.targets(ai, aj), params["alpha"])
    si, sj = split.test_pairs()
    np.testing.assert_allclose(model.predict(brain, si, sj), predict(np.abs(x[si] - x[sj])), rtol=1e-8, atol=1e-10)


def test_planted_signal_rejects_the_mean_only_model(registered, brain):
    # alpha = 1e5 shrinks the ridge to the training mean; with a planted rule it must lose
    split = make_splits(brain, "random", n_repeats=1, seed=0)[0]
    _, params, table = select_and_fit("absdiff-ridge", brain, split, n_configs=6, seed=1, n_features=30)
    assert params["alpha"] < 1e5
    assert set(table["alpha"]) == {1e-3, 1e-1, 10.0, 1e3, 1e5}  # the whole 5-point grid
    heavy = table.loc[table["alpha"] == 1e5, "val_mse"].item()
    assert heavy > 1.2 * table["val_mse"].min()


def test_selection_is_deterministic(registered, brain):
    split = make_splits(brain, "spatial", n_repeats=1, seed=2)[3]
    a = select_and_fit("absdiff-ridge", brain, split, n_configs=4, seed=3)
    b = select_and_fit("absdiff-ridge", brain, split, n_configs=4, seed=3)
    cols = ["params", "val_mse", "chosen"]
    assert a[2][cols].equals(b[2][cols]) and a[1] == b[1]
    c = select_and_fit("absdiff-ridge", brain, split, n_configs=4, seed=4)
    assert c[2]["params"].tolist() != a[2]["params"].tolist()


def test_fixed_hyperparameters_and_variants(registered, brain):
    split = make_splits(brain, "random", n_repeats=1, seed=0)[2]
    _, params, table = select_and_fit("absdiff-ridge", brain, split, n_configs=4, alpha=0.1)
    # alpha fixed: only n_features is searched, and its grid has 2 values -> 2 candidates
    assert len(table) == 2 and "alpha" not in table.columns
    assert {json.loads(p)["alpha"] for p in table["params"]} == {0.1}
    assert sorted(table["n_features"]) == [5, 30]
    # a registry variant's fixed value is removed from the grid and never overridden
    _, params, table = select_and_fit("absdiff-ridge-5", brain, split, n_configs=6)
    assert params["n_features"] == 5 and "n_features" not in table.columns and len(table) == 5
    with pytest.raises(ValueError, match="no hyperparameters"):
        select_and_fit("absdiff-ridge", brain, split, learning_rate=0.1)


def test_non_finite_validation_predictions_never_win(registered, brain):
    split = make_splits(brain, "random", n_repeats=1, seed=0)[0]
    _, params, table = select_and_fit("absdiff-ridge", brain, split, n_configs=6, seed=1, fail_above=0.01)
    broken = table["alpha"] > 0.01
    assert len(table) == 7 and broken.sum() == 5 and np.isinf(table.loc[broken, "val_mse"]).all()
    assert np.isfinite(table.loc[~broken, "val_mse"]).all()
    assert params["alpha"] == 1e-3 and table.loc[table["chosen"], "alpha"].item() == 1e-3
    with pytest.raises(ValueError, match="every candidate gave non-finite"):
        select_and_fit("absdiff-ridge", brain, split, fail_above=-1.0)


def test_unknown_model_is_a_value_error_naming_the_known_ones(registered, brain):
    split = make_splits(brain, "random", n_repeats=1)[0]
    with pytest.raises(ValueError, match=r"unknown model 'nope'; known: .*absdiff-ridge") as info:
        select_and_fit("nope", brain, split)
    assert not isinstance(info.value, KeyError)
    assert FIT_CALLS == []


def test_split_must_match_brain(registered, brain):
    other = make_synthetic_brain(20, 30, seed=1)
    split = make_splits(other, "random", n_repeats=1)[0]
    with pytest.raises(ValueError, match="covers 20 regions"):
        select_and_fit("absdiff-ridge", brain, split)


# ------------------------------------------------------------ candidate sampling
def test_sample_configs_clips_and_respects_small_grids():
    default = {"a": 1, "b": "x"}
    grid = {"a": [1, 2, 3, 4], "b": ["x", "y", "z"]}  # 12 configurations
    # n_configs = sampled configurations (clipped to 3..6); the default comes on top
    for requested, sampled in [(1, 3), (3, 3), (4, 4), (6, 6), (50, 6)]:
        configs = sample_configs(default, grid, n_configs=requested, seed=0)
        assert len(configs) == 1 + sampled and configs[0] == default
        assert default not in configs[1:]
        assert len({json.dumps(c, sort_keys=True) for c in configs}) == 1 + sampled
        assert all(c["a"] in grid["a"] and c["b"] in grid["b"] for c in configs)
    # a grid of 4 that contains the default: 3 sampled (the minimum) = every other point
    assert sorted(c["a"] for c in sample_configs({"a": 1}, {"a": [1, 2, 3, 4]}, n_configs=1)[1:]) == [2, 3, 4]
    # grid of 2 that contains the default: only 1 other configuration exists
    assert sample_configs({"a": 1}, {"a": [1, 2]}, n_configs=4) == [{"a": 1}, {"a": 2}]
    # default outside the grid: default + both grid points
    assert len(sample_configs({"a": 5}, {"a": [1, 2]}, n_configs=4)) == 3
    assert sample_configs({"a": 5}, {}, n_configs=4) == [{"a": 5}]
    # duplicated grid values do not create duplicate candidates
    assert len(sample_configs({"a": 1}, {"a": [1, 2, 2, 2]}, n_configs=6)) == 2
    with pytest.raises(ValueError, match="n_configs must be an integer"):
        sample_configs(default, grid, n_configs=4.5)


def test_sample_configs_uniform_over_grid_and_huge_grids():
    grid = {"a": list(range(5)), "b": list(range(4))}
    counts = np.zeros((5, 4))
    for seed in range(400):
        for c in sample_configs({"a": 0, "b": 0}, grid, n_configs=4, seed=seed)[1:]:
            counts[c["a"], c["b"]] += 1
    assert counts[0, 0] == 0
    others = np.delete(counts.ravel(), 0)
    # 400 x 4 = 1600 draws over 19 points: each expected ~84 (binomial SD ~8); a uniform
    # sampler stays well inside
    assert others.sum() == 1600
    assert others.min() > 50 and others.max() < 120
    huge = {f"k{n}": list(range(10)) for n in range(14)}  # 10^14 configurations
    configs = sample_configs({k: 0 for k in huge}, huge, n_configs=6, seed=0)
    assert len(configs) == 7 and len({json.dumps(c, sort_keys=True) for c in configs}) == 7


def test_refit_uses_the_epoch_count_early_stopping_chose(brain):
    """An early-stopped model is refitted on all training regions for its validated epoch count."""
    from spatiomol.models.lowrank import BilinearLowRank

    split = make_splits(brain, "random", n_repeats=1, seed=2)[0]
    model, params, table = select_and_fit("bilinear-lowrank", brain, split, n_configs=3, seed=0, epochs=400, patience=5)
    chosen_row = table.loc[table["chosen"]].iloc[0]
    inner = BilinearLowRank(**{**json.loads(chosen_row["params"]), "epochs": 400, "patience": 5})
    from spatiomol.evaluation.splits import inner_validation
    from spatiomol.evaluation.tuning import _inner_seed

    inner_train, val = inner_validation(brain, split.train, split.kind, fraction=0.2, seed=_inner_seed(0, split))
    inner.fit(brain, inner_train, val_regions=val)
    assert inner.best_epoch_ + 1 < 400  # early stopping acted
    assert params["epochs"] == inner.best_epoch_ + 1 == model.epochs
    assert len(model.history_["train"]) == inner.best_epoch_ + 1 and not model.history_["val"]


def test_model_params_reach_the_models_own_seed(brain):
    """`seed` selects candidates; a model's own `seed` is fixed through `model_params`."""
    split = make_splits(brain, "random", n_repeats=1, seed=2)[0]
    model, params, table = select_and_fit(
        "bilinear-lowrank", brain, split, n_configs=3, seed=0, model_params={"seed": 7, "epochs": 20, "rank": 10}
    )
    assert model.seed == 7 and params["seed"] == 7
    assert all(json.loads(p)["seed"] == 7 for p in table["params"])
    other, _, other_table = select_and_fit(
        "bilinear-lowrank", brain, split, n_configs=3, seed=0, model_params={"seed": 8, "epochs": 20, "rank": 10}
    )
    # same candidates (chosen by `seed`; the default + 3 sampled), different initialisation
    # (rank fixed so that the two winners' factor matrices have the same shape)
    assert len(table) == 4
    assert list(other_table["lam"]) == list(table["lam"]) and other.seed == 8
    assert list(other_table["learning_rate"]) == list(table["learning_rate"])
    assert not np.allclose(other.E_, model.E_)


# ------------------------------------------------ hyperparameters with no effect
class AugmentedRidge(AbsDiffRidge):
    """AbsDiffRidge that also takes the neural models' target-augmentation hyperparameters."""

    def __init__(self, alpha=10.0, n_features=30, fail_above=None, aug_prob=0.3, aug_style="linear_decay"):
        super().__init__(alpha=alpha, n_features=n_features, fail_above=fail_above)
        self.aug_prob = aug_prob
        self.aug_style = aug_style

    @classmethod
    def config(cls):
        return {
            "default": {
                "alpha": 10.0,
                "n_features": 30,
                "fail_above": None,
                "aug_prob": 0.3,
                "aug_style": "linear_decay",
            },
            "grid": {
                "alpha": [1e-1, 10.0],
                "aug_prob": [0.0, 0.1, 0.3],
                "aug_style": ["linear_decay", "linear_peak", "curriculum_swap_constant"],
            },
        }


@pytest.fixture
def augmented(monkeypatch):
    spec = registry.ModelSpec("aug-ridge", f"{__name__}:AugmentedRidge", "Aug ridge", "linear", True, False)
    monkeypatch.setitem(registry.MODELS, "aug-ridge", spec)
    yield


def test_augmentation_is_not_searched_without_a_subject_stack(augmented, brain):
    assert brain.subjects is None
    split = make_splits(brain, "random", n_repeats=1, seed=0)[0]
    _, params, table = select_and_fit("aug-ridge", brain, split, n_configs=6, seed=0)
    # only alpha is searched: its 2 values are the only distinct models (the default + 1)
    configs = [json.loads(p) for p in table["params"]]
    assert not any(c.startswith("aug_") for c in table.columns)
    assert len(table) == 2 and sorted(table["alpha"]) == [1e-1, 10.0]
    assert all((c["aug_prob"], c["aug_style"]) == (0.3, "linear_decay") for c in configs)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)


def test_augmentation_is_searched_with_a_subject_stack(augmented):
    with_subjects = make_synthetic_brain(40, 30, rule="bilinear", signal_scale=0.3, n_subjects=3, seed=11)
    split = make_splits(with_subjects, "random", n_repeats=1, seed=0)[0]
    _, _, table = select_and_fit("aug-ridge", with_subjects, split, n_configs=6, seed=0)
    assert {"alpha", "aug_prob", "aug_style"} <= set(table.columns) and len(table) == 7
    assert table["aug_prob"].nunique() > 1 and table["aug_style"].nunique() > 1
    # aug_style means nothing at aug_prob 0: such candidates carry the default style, and
    # no two candidates are the same model
    off = table["aug_prob"] == 0.0
    assert (table.loc[off, "aug_style"] == "linear_decay").all()
    effective = {(r.alpha, r.aug_prob, r.aug_style if r.aug_prob else None) for r in table.itertuples()}
    assert len(effective) == len(table)
    # the whole grid has 2 x (1 + 2 x 3) = 14 distinct models; ask for all of them
    configs = sample_configs(
        {"alpha": 10.0, "aug_prob": 0.3, "aug_style": "linear_decay"},
        AugmentedRidge.config()["grid"],
        n_configs=6,
        seed=3,
        canonical=lambda c: {**c, "aug_style": "linear_decay"} if c["aug_prob"] == 0 else c,
    )
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 7


def test_augmentation_settings_without_effect_give_identical_fits():
    """The premise of `inert_hyperparameters`, on the real MLP: identical predictions."""
    from spatiomol.evaluation.tuning import inert_hyperparameters

    with_subjects = make_synthetic_brain(24, 12, rule="bilinear", n_subjects=3, seed=5)
    without = with_subjects.replace(subjects=None)
    train, (i, j) = np.arange(18), pairs_within(np.arange(18, 24))
    tiny = dict(hidden_dims=[8], epochs=3, batch_size=16, device="cpu", seed=0)

    def predictions(brain, aug_prob, aug_style):
        model = registry.make_model("mlp", **tiny, aug_prob=aug_prob, aug_style=aug_style)
        return model.fit(brain, train).predict(brain, i, j)

    base = predictions(without, 0.0, "linear_decay")
    np.testing.assert_array_equal(predictions(without, 1.0, "constant"), base)
    np.testing.assert_array_equal(predictions(without, 0.5, "curriculum_swap_constant"), base)
    assert inert_hyperparameters(without, {"aug_prob": 1.0, "aug_style": "constant", "alpha": 1}) == {
        "aug_prob",
        "aug_style",
    }
    off = predictions(with_subjects, 0.0, "linear_decay")
    np.testing.assert_array_equal(predictions(with_subjects, 0.0, "constant"), off)
    assert inert_hyperparameters(with_subjects, {"aug_prob": 0.0, "aug_style": "constant"}) == {"aug_style"}
    # with subjects and aug_prob > 0 the settings act (so the equalities above can fail)
    assert not np.array_equal(predictions(with_subjects, 1.0, "constant"), off)
    assert inert_hyperparameters(with_subjects, {"aug_prob": 1.0, "aug_style": "constant"}) == set()


def test_lone_candidate_without_early_stopping_is_fitted_once_on_all_training_regions(brain):
    """No inner fit when nothing is searched and validation would change nothing: the
    result is the plain fit on the outer training regions, bit for bit."""
    split = make_splits(brain, "random", n_repeats=1, seed=2)[0]
    _, grid = registry.search_space("mlp")
    tiny = dict(hidden_dims=[8, 8], dropout_rate=0.1, learning_rate=1e-2, weight_decay=0.0, batch_size=16)
    fixed = {**{k: v[0] for k, v in grid.items()}, **tiny, "epochs": 3, "device": "cpu", "early_stopping": False}
    model, params, table = select_and_fit("mlp", brain, split, seed=0, model_params=fixed)
    direct = registry.make_model("mlp", **{**registry.search_space("mlp")[0], **fixed}).fit(brain, split.train)
    i, j = brain.pairs(split.test)
    np.testing.assert_array_equal(model.predict(brain, i, j), direct.predict(brain, i, j))
    assert len(table) == 1 and bool(table["chosen"].iloc[0]) and np.isnan(table["val_mse"].iloc[0])
    assert params["early_stopping"] is False and model.history_.epochs_run == 3
    # the default refit trains the whole budget, so a lone candidate needs no inner fit either
    _, _, budget = select_and_fit("mlp", brain, split, seed=0, model_params={**fixed, "early_stopping": True})
    assert np.isnan(budget["val_mse"].iloc[0])
    # a refit for the early-stopped epoch count does need it
    best = {**fixed, "early_stopping": True, "refit_epochs": "best"}
    _, chosen, stopped = select_and_fit("mlp", brain, split, seed=0, model_params=best)
    assert np.isfinite(stopped["val_mse"].iloc[0]) and 1 <= chosen["epochs"] <= 3
