"""Grid construction and configuration parsing."""

from __future__ import annotations

import re

import pytest
import yaml

from spatiomol.experiments.config import ExperimentConfig, load_config
from spatiomol.experiments.grid import build_grid, null_index_for, null_repeats, random_permutation
from spatiomol.nulls import NULL_DEFAULTS, NULL_METHODS, SUBCORTEX_DEFAULT, SUBCORTEX_NULLS


def test_yaml_bare_true_and_null_are_input_kinds(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndatasets: hcp-s100\nmodels: [cm]\ninputs: [true, null]\nrepeats: 1\n")
    cfg = load_config(path)
    assert cfg.inputs == ["true", "null"] and cfg.datasets == ["hcp-s100"]
    toml = tmp_path / "c.toml"
    toml.write_text('name = "x"\nmodels = ["cm"]\ninputs = ["true"]\n')
    assert load_config(toml).models == ["cm"]


def test_grid_counts_and_null_assignment():
    cfg = ExperimentConfig(
        models=["exp-decay", "cm", "cm-pca"],
        splits=["random", "spatial"],
        repeats=3,
        folds=4,
        inputs=["true", "null"],
        variants=[{"model": "cm", "input": "permuted"}],
        nulls={"top": 3},
    )
    specs = build_grid(cfg)
    # exp-decay reads no expression: true only; cm, cm-pca: true + null; variant: random only
    expected = 1 * 2 * 12 + 2 * 2 * 2 * 12 + 1 * 12
    assert len(specs) == expected == len({s.run_id for s in specs})
    nulls = [s for s in specs if s.input == "null"]
    # App. A.4: one null per four-fold split -> every fold of repeat r uses null r
    assert {(s.repeat, s.fold, s.null_index) for s in nulls} == {(r, f, r) for r in range(3) for f in range(4)}
    assert all(s.null_index == -1 for s in specs if s.input != "null")


def test_null_runs_score_every_kept_null_once_and_null_models_limit_them():
    """With more nulls than repeats, null runs add repeats so that null k is scored on repeat k."""
    cfg = ExperimentConfig(
        models=["cm", "cm-pls", "mlp"], splits=["random"], repeats=2, folds=4, null_models=["cm", "mlp"]
    )
    specs = build_grid(cfg)
    top = NULL_DEFAULTS["top"]
    assert null_repeats(2, None) == 2 and null_repeats(2, {"top": top}) == top == 20
    true = {(s.model, s.repeat) for s in specs if s.input == "true"}
    assert true == {(m, r) for m in ("cm", "cm-pls", "mlp") for r in range(2)}
    nulls = [s for s in specs if s.input == "null"]
    assert {s.model for s in nulls} == {"cm", "mlp"}  # cm-pls is not in null_models
    assert {(s.repeat, s.fold, s.null_index) for s in nulls} == {(k, f, k) for k in range(top) for f in range(4)}
    # the first repeats' null runs are the runs a config with repeats == top makes (same ids)
    wide = {s.run_id for s in build_grid(cfg.updated(repeats=top)) if s.input == "null"}
    assert {s.run_id for s in nulls} == wide
    with pytest.raises(ValueError, match="null_models"):
        ExperimentConfig(null_models=["no-such-model"])


def test_one_null_per_kfold_split_as_in_app_a4():
    """Paper App. A.4: 10 four-fold splits, "for each split, a corresponding unique null
    (from the top 10) is used" — the 4 folds of a repeat share one null, the 10 repeats
    use the 10 nulls once each."""
    cfg = ExperimentConfig(models=["cm"], splits=["random"], repeats=10, folds=4, inputs=["null"])
    specs = build_grid(cfg)
    by_repeat = {}
    for s in specs:
        by_repeat.setdefault(s.repeat, set()).add(s.null_index)
    assert all(len(v) == 1 for v in by_repeat.values())  # one null for all folds of a repeat
    assert [by_repeat[r].pop() for r in range(10)] == list(range(10))  # unique null per repeat
    assert [null_index_for(r, 3) for r in range(7)] == [0, 1, 2, 0, 1, 2, 0]  # more repeats than nulls: cycle
    with pytest.raises(ValueError, match="top must be a positive integer"):
        null_index_for(0, 0)


def test_variants_dedupe_with_main_grid_and_seeds_are_paired():
    cfg = ExperimentConfig(
        models=["cm"],
        splits=["random"],
        repeats=1,
        inputs=["true", "permuted"],
        variants=[{"model": "cm", "input": "permuted"}],
    )
    specs = build_grid(cfg)
    assert len(specs) == 8
    true0 = next(s for s in specs if s.input == "true" and s.fold == 0)
    perm0 = next(s for s in specs if s.input == "permuted" and s.fold == 0)
    assert true0.derived_seed("model") == perm0.derived_seed("model")  # paired true/null training seeds
    assert true0.run_id != perm0.run_id
    p = random_permutation(40, perm0.derived_seed("permutation"))
    assert sorted(p) == list(range(40))


def test_extending_repeats_keeps_run_ids():
    one = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=1, nulls={"top": 1}))}
    ten = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=10, nulls={"top": 1}))}
    assert one < ten and len(ten) == 10 * len(one)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"splits": ["random", "blocks"]}, "'splits'"),
        ({"inputs": ["true", "shuffled"]}, "'inputs'"),
        ({"repeats": 0}, "'repeats'"),
        ({"folds": 1}, "'folds'"),
        ({"tuning": "yes"}, "'tuning'"),
        ({"variants": [{"model": "cm"}]}, "'variants'"),
        ({"nulls": {"n": 5, "top": 10}}, "'nulls.top'"),
        ({"nulls": {"n": 20.5, "top": 3}}, r"'nulls.n' must be an integer >= 2.*got 20.5"),
        ({"nulls": {"n": 1, "top": 1}}, r"'nulls.n' must be an integer >= 2"),
        ({"nulls": {"top": 0}}, r"'nulls.top' must be an integer between 1 and nulls.n \(10000\), got 0"),
        ({"nulls": {"top": 2.0}}, r"'nulls.top'"),
        ({"nulls": {"seed": "zero"}}, r"'nulls.seed' must be a non-negative integer, got 'zero'"),
        ({"nulls": {"min_moved": 1.5}}, r"'nulls.min_moved' must be a number between 0 and 1.*got 1.5"),
        ({"nulls": {"min_moved": True}}, r"'nulls.min_moved'"),
        (
            {"nulls": {"method": "spin"}},
            rf"'nulls.method' must be one of {re.escape(str(list(NULL_METHODS)))}, got 'spin'",
        ),
        ({"nulls": {"shuffle": 1}}, r"'nulls'.*\['shuffle'\]"),
        (
            {"nulls": {"subcortex": "spin"}},
            rf"'nulls.subcortex' must be one of {re.escape(str(list(SUBCORTEX_NULLS)))}",
        ),
        ({"nulls": {"subcortex": 1}}, r"'nulls.subcortex'.*got 1"),
        ({"nulls": {"cge_match": "yes"}}, r"'nulls.cge_match' must be true, false or null.*got 'yes'"),
        ({"nulls": [{"method": "cge"}, {"method": "spin"}]}, r"'nulls\[1\].method' must be one of .*got 'spin'"),
        ({"nulls": [{"method": "moran"}, {"method": "moran", "cge_match": False}]}, r"'nulls\[1\]'.*nulls\[0\]"),
        ({"nulls": [{"method": "moran"}, {"top": 0}]}, r"'nulls\[1\].top'"),
        ({"nulls": [{"method": "moran"}, "cge"]}, r"'nulls\[1\]' must be a mapping"),
        ({"nulls": []}, r"'nulls' must be a mapping of null settings or a non-empty list"),
        ({"nulls": "cge"}, r"'nulls' must be a mapping"),
        (
            {"model_params": {"mlp": {"epoch": 3}}},
            r"'model_params.mlp' must be hyperparameters of mlp among.*'epochs'.*got \['epoch'\]",
        ),
        ({"model_params": {"gnn": {"depth": 3}}}, r"'model_params' must be keyed by registry model names.*got 'gnn'"),
        (
            {"variants": [{"model": "mlp-coords-only", "input": "null"}]},
            r"'variants'.*mlp-coords-only ignores expression.*'input': 'null'",
        ),
        ({"variants": [{"model": "exp-decay", "input": "permuted"}]}, r"'variants'.*exp-decay ignores expression"),
        ({"epochs": 3}, "unknown configuration fields"),
    ],
)
def test_bad_config_names_the_field(tmp_path, changes, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"models": ["cm"], **changes}))
    with pytest.raises(ValueError, match=message) as info:
        load_config(path)
    assert "bad.yaml" in str(info.value)


def test_unknown_model_and_missing_file():
    with pytest.raises(ValueError, match="unknown model 'gnn'"):
        ExperimentConfig(models=["gnn"]).resolved_models()
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("nope.yaml")
    assert ExperimentConfig(models=["table1"]).resolved_models()[:3] == ["cge-pca", "gaussian-kernel", "exp-decay"]


def test_valid_nulls_and_model_params_are_kept(capsys):
    from spatiomol.models import registry

    cfg = ExperimentConfig(
        models=["cm"],
        nulls={"n": 50, "top": 50, "seed": 3, "min_moved": 0, "method": "random"},
        model_params={"mlp": {"epochs": 2}, "cm": {}},
        variants=[{"model": "mlp-coords-only", "input": "true"}],
    )
    assert cfg.nulls == {
        "n": 50,
        "top": 50,
        "method": "random",
        "seed": 3,
        "min_moved": 0.0,
        "subcortex": SUBCORTEX_DEFAULT,
        "cge_match": None,
    }
    # the settings the runs use: cge_match resolved to the method's default
    assert cfg.null_families() == {"random(n=50,top=50,seed=3,min_moved=0.0)": {**cfg.nulls, "cge_match": False}}
    assert "epochs" in registry.model_class("mlp")._get_param_names()
    # the CLI turns the ValueError into exit status 2 with the message
    from spatiomol.cli.main import main

    assert (
        main(
            [
                "run",
                "--dataset",
                "synthetic:n_regions=20,n_genes=10,seed=1",
                "--models",
                "cm",
                "--null-spins",
                "1",
                "--out",
                "/nonexistent/never-written",
            ]
        )
        == 2
    )
    assert "'nulls.n' must be an integer >= 2" in capsys.readouterr().err


def test_datasets_string_keeps_synthetic_specs_whole():
    cfg = ExperimentConfig(datasets="hcp-s100, synthetic:n_regions=20,n_genes=10,seed=1,my.yaml", models=["cm"])
    assert cfg.datasets == ["hcp-s100", "synthetic:n_regions=20,n_genes=10,seed=1", "my.yaml"]
    listed = ExperimentConfig(datasets=["synthetic:n_regions=20,n_genes=10"], models=["cm"])
    assert listed.datasets == ["synthetic:n_regions=20,n_genes=10"]  # a list entry is never split


def test_transfer_sources_are_not_part_of_the_key():
    from dataclasses import replace

    from spatiomol.experiments.grid import RunSpec
    from spatiomol.experiments.store import KEY_COLUMNS

    spec = RunSpec("a->b", "cm", "transfer", 0, 0, "true", -1, 0, "{}")
    with_sources = replace(spec, sources=("a", "b"))
    assert tuple(with_sources.key) == KEY_COLUMNS and with_sources.run_id == spec.run_id and with_sources == spec
    assert (spec.train_source, spec.test_source, spec.model_seed()) == ("a", "b", 0)
    grid = build_grid(ExperimentConfig(models=["cm"], repeats=1, splits=["random"], inputs=["true"]))[0]
    assert (grid.train_source, grid.test_source) == (grid.dataset, grid.dataset)
    assert grid.model_seed() == grid.derived_seed("model")


def test_goal_config_runs_every_goal_model_nested_on_random_and_spatial_splits():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "smt_goal.yaml")
    runs = build_grid(config)
    assert set(config.models) == {"smt", "smt-cls", "mlp", "mlp-coords", "cm"} and config.tuning
    # 5 models x 2 split types x 2 repeats x 4 folds, true expression only, every run nested
    assert len(runs) == 80 and {r.split_type for r in runs} == {"random", "spatial"}
    assert all(r.settings_dict["tuning"] for r in runs)
    s400 = build_grid(load_config(Path(__file__).resolve().parents[2] / "configs" / "smt_goal_s400.yaml"))
    # 3 models x 2 repeats x 4 random folds on hcp-s400, every run nested
    assert len(s400) == 24 and {(r.dataset, r.split_type) for r in s400} == {("hcp-s400", "random")}
    assert {r.model for r in s400} == {"smt-cls", "mlp-coords", "cm"} and all(r.settings_dict["tuning"] for r in s400)


def test_a_changed_model_default_changes_that_models_run_ids_only(monkeypatch):
    """Resuming a folder after a default changed must re-run that model, not reuse its old fits."""
    from spatiomol.models import registry

    cfg = ExperimentConfig(models=["cm", "mlp"], splits=["random"], repeats=1, folds=4, inputs=["true"])
    before = {s.label(): s.run_id for s in build_grid(cfg)}
    original = registry.search_space

    def mlp_with_other_dropout(name):
        default, grid = original(name)
        return ({**default, "dropout_rate": 0.5}, grid) if name == "mlp" else (default, grid)

    monkeypatch.setattr(registry, "search_space", mlp_with_other_dropout)
    after = {s.label(): s.run_id for s in build_grid(cfg)}
    assert before.keys() == after.keys() and len(before) == 8
    changed = {label for label in before if before[label] != after[label]}
    assert changed == {label for label in before if "mlp" in label} and len(changed) == 4
