"""A fit that did not train is never silent: the run's record, the run summary and the
report's Table 1 all name it, with a count per model."""

from __future__ import annotations

import pandas as pd
import pytest

from spatiomol.experiments.config import ExperimentConfig
from spatiomol.experiments.runner import run_experiment, summary_text
from spatiomol.experiments.store import CHECK_NONE, CHECK_NOT_TRAINED, CHECK_TRAINED, ResultsStore
from spatiomol.reports.report import write_report
from spatiomol.reports.sections import slug
from spatiomol.reports.tables import display

#: a learning rate of 1e-12 leaves the MLP the constant predictor it starts as
STUCK_MLP = {"epochs": 3, "hidden_dims": [16], "batch_size": 128, "learning_rate": 1e-12}


@pytest.fixture(scope="module")
def stuck_grid(tmp_path_factory, make_grid_config):
    config = ExperimentConfig.from_dict(
        make_grid_config(
            models=["cm", "mlp"],
            splits=["random"],
            repeats=1,
            folds=2,
            inputs=["true"],
            model_params={"mlp": STUCK_MLP},
        )
    )
    out = tmp_path_factory.mktemp("stuck")
    logged: list[str] = []
    with pytest.warns(UserWarning, match="did not train"):
        summary = run_experiment(config, out, progress=False, log=logged.append)
    return config, out, summary, logged


def test_the_record_names_each_fit_that_did_not_train(stuck_grid):
    _, out, summary, logged = stuck_grid
    checks = ResultsStore(out).load().drop_duplicates("run_id").groupby("model")["training_check"].agg(list)
    assert checks["cm"] == [CHECK_NONE, CHECK_NONE]  # closed-form: nothing to check
    mlp = checks["mlp"]
    assert len(mlp) == 2 and all(c.startswith(CHECK_NOT_TRAINED + ": ") and "prediction SD" in c for c in mlp)
    assert len(summary.not_trained) == 2 and not summary.failed
    assert sum(line.startswith("NOT TRAINED") for line in logged) == 2
    assert "2 fits did not train" in summary_text(summary)


def test_the_report_flags_the_model_with_a_count(stuck_grid, tmp_path):
    config, out, _, _ = stuck_grid
    report = write_report(out, tmp_path, n_permutations=200, html=False, brain_views=False).read_text()
    assert "Warning: fits that did not train" in report and f"{display('mlp')}: 2 of 2 fits" in report
    table = pd.read_csv(tmp_path / "tables" / f"table1_{slug(config.datasets[0])}.csv", index_col=0)
    assert table.loc[display("mlp"), "not trained"] == 2 and table.loc[display("mlp"), "fits checked"] == 2
    assert pd.isna(table.loc[display("cm"), "not trained"])  # closed-form: no training to check


def test_a_trained_fit_is_recorded_as_trained(tmp_path, make_grid_config):
    config = ExperimentConfig.from_dict(
        make_grid_config(
            models=["mlp"],
            splits=["random"],
            repeats=1,
            folds=2,
            inputs=["true"],
            model_params={"mlp": {**STUCK_MLP, "learning_rate": 3e-3, "epochs": 20}},
        )
    )
    summary = run_experiment(config, tmp_path, progress=False, log=lambda _: None)
    assert not summary.not_trained
    assert set(ResultsStore(tmp_path).load()["training_check"]) == {CHECK_TRAINED}
    report = write_report(tmp_path, tmp_path / "report", n_permutations=200, html=False, brain_views=False)
    assert "did not train" not in report.read_text()
