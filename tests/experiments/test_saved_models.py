"""``save_models``: every run's fitted model is saved in the results folder and read back by
`load_run_model`; `fit_run` refits a stored run's model from its `RunSpec` (`run_spec`).
Both reproduce the stored predictions."""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import fit_run, load_run_model, run_data, run_experiment, run_spec
from spatiomol.experiments.store import ResultsStore


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_grid_config):
    config = ExperimentConfig.from_dict(
        make_grid_config(
            models=["cm", "mlp"],
            splits=["spatial"],
            repeats=1,
            folds=2,
            inputs=["true", "null"],
            model_params={"mlp": {"epochs": 2, "hidden_dims": [16], "batch_size": 128}},
            save_models=True,
            nulls={"n": 200, "top": 1, "method": "cge", "seed": 0},
        )
    )
    out = tmp_path_factory.mktemp("saved")
    summary = run_experiment(config, out, progress=False, log=lambda m: None)
    assert summary.done == len(build_grid(config)) == 8 and not summary.failed
    return config, out


def test_saved_models_and_refits_reproduce_the_stored_predictions(saved):
    config, out = saved
    store = ResultsStore(out)
    assert sorted(p.stem for p in store.models_dir.iterdir()) == sorted(store.done_ids())
    for spec in build_grid(config):
        rid = spec.run_id
        assert run_spec(out, rid) == spec and run_spec(out, rid).run_id == rid
        stored = store.load_predictions(rid)
        data = run_data(spec, out)
        np.testing.assert_array_equal(data.i, stored["i"])
        model = load_run_model(out, rid)
        assert type(model).__name__ == ("MLP" if spec.model == "mlp" else "ConnectomeModel")
        np.testing.assert_array_equal(model.predict(data.predict_brain, data.i, data.j), stored["y_pred"])
        refit = fit_run(spec, out)  # same data, seeds and hyperparameters as the stored run
        assert refit.hyperparameters == model.get_params()
        np.testing.assert_array_equal(refit.model.predict(data.predict_brain, data.i, data.j), stored["y_pred"])


def test_without_save_models_nothing_is_saved(tmp_path, make_grid_config):
    config = ExperimentConfig.from_dict(make_grid_config(models=["exp-decay"], splits=["random"], repeats=1))
    assert config.save_models is False
    run_experiment(config, tmp_path, progress=False, log=lambda m: None)
    rid = next(iter(ResultsStore(tmp_path).done_ids()))
    assert not ResultsStore(tmp_path).models_dir.exists()
    with pytest.raises(FileNotFoundError, match="save_models"):
        load_run_model(tmp_path, rid)
    with pytest.raises(FileNotFoundError, match="not stored"):
        run_spec(tmp_path, "0" * 20)
    with pytest.raises(ValueError, match="'save_models' must be true or false"):
        ExperimentConfig.from_dict(make_grid_config(save_models="yes"))
