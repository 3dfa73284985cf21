"""Grid construction and configuration parsing."""

from __future__ import annotations

import re

import pytest
import yaml

from spatiomol.experiments.config import ExperimentConfig, load_config
from spatiomol.experiments.grid import build_grid, null_count, random_permutation, select_runs
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
    # exp-decay reads no expression: true only; cm, cm-pca: true + 3 nulls on each split; variant: random only
    expected = 1 * 2 * 12 + 2 * 2 * 12 + 2 * 2 * 3 * 12 + 1 * 12
    assert len(specs) == expected == len({s.run_id for s in specs})
    nulls = [s for s in specs if s.input == "null"]
    # shared folds: every null on every (repeat, fold) of the true runs
    assert {(s.repeat, s.fold, s.null_index) for s in nulls} == {
        (r, f, k) for r in range(3) for f in range(4) for k in range(3)
    }
    assert all(s.null_index == -1 for s in specs if s.input != "null")


def _splits(specs, **where) -> set[tuple[int, int]]:
    return {(s.repeat, s.fold) for s in specs if all(getattr(s, k) == v for k, v in where.items())}


def test_null_runs_share_exactly_the_true_runs_folds():
    """Every null k < K of every model is scored on exactly the (repeat, fold) set of the true runs."""
    cfg = ExperimentConfig(
        models=["cm", "cge-pca", "mlp"],
        splits=["random", "spatial"],
        repeats=3,
        folds=4,
        nulls=[{"method": "moran", "top": 5, "neural_top": 2}, {"method": "cge", "top": 4}],
    )
    specs = build_grid(cfg)
    families = {"moran(top=5)": (5, 2), "cge(top=4)": (4, 4)}  # label: (K closed-form, K neural)
    assert {s.null_family for s in specs if s.input == "null"} == set(families)
    for model in ("cm", "cge-pca", "mlp"):
        for split_type in ("random", "spatial"):
            true = _splits(specs, model=model, split_type=split_type, input="true")
            assert true == {(r, f) for r in range(3) for f in range(4)}  # repeats × folds, nothing more
            for family, counts in families.items():
                nulls = [s for s in specs if (s.model, s.split_type, s.null_family) == (model, split_type, family)]
                assert {s.null_index for s in nulls} == set(range(counts[model == "mlp"]))
                for k in range(counts[model == "mlp"]):
                    assert _splits(nulls, null_index=k) == true
    # the true and null runs of one split share the model seed (paired), and differ in run id
    cell = [s for s in specs if (s.model, s.split_type, s.repeat, s.fold) == ("cm", "random", 2, 3)]
    (true0,) = [s for s in cell if s.input == "true"]
    twins = [s for s in cell if s.input == "null"]
    assert len(twins) == 5 + 4 and len({s.run_id for s in twins} | {true0.run_id}) == 10
    assert {s.derived_seed("model") for s in twins} == {true0.derived_seed("model")}


def test_null_count_per_model_category():
    """Closed-form models (rules, linear) get the family's top nulls; neural ones min(top, neural_top)."""
    from spatiomol.models import registry

    cfg = ExperimentConfig(
        models=["cge-pca", "cm", "cm-pls", "mlp", "smt"],
        splits=["random"],
        repeats=2,
        folds=4,
        null_models=["cge-pca", "cm", "mlp"],
        variants=[{"model": "smt-cls", "input": "null"}],
        nulls={"top": 6, "neural_top": 3},
    )
    specs = build_grid(cfg)
    nulls = [s for s in specs if s.input == "null"]
    by_model = {m: {s.null_index for s in nulls if s.model == m} for m in {s.model for s in nulls}}
    # cm-pls is not in null_models; smt-cls gets null runs as a Table 3 variant
    assert by_model == {"cge-pca": set(range(6)), "cm": set(range(6)), "mlp": set(range(3)), "smt-cls": set(range(3))}
    assert {registry.spec(m).category for m in ("cge-pca", "cm", "mlp", "smt-cls")} == {"rules", "linear", "nonlinear"}
    family = {"top": 6, "neural_top": 3}
    assert [null_count(m, family) for m in ("cge-pca", "cm", "mlp", "smt-cls")] == [6, 6, 3, 3]
    assert null_count("mlp", {"top": 2, "neural_top": 19}) == 2  # never more than the kept nulls
    # the defaults: K = 99 for closed-form models (smallest p 0.01), 19 for neural ones (0.05)
    assert (NULL_DEFAULTS["top"], NULL_DEFAULTS["neural_top"]) == (99, 19)
    assert null_count("cm", NULL_DEFAULTS) == 99 and null_count("smt", NULL_DEFAULTS) == 19
    default = build_grid(ExperimentConfig(models=["cm", "mlp"], splits=["random"], repeats=1, folds=4))
    assert len([s for s in default if s.input == "null" and s.model == "cm"]) == 99 * 4
    assert len([s for s in default if s.input == "null" and s.model == "mlp"]) == 19 * 4
    with pytest.raises(ValueError, match="null_models"):
        ExperimentConfig(null_models=["no-such-model"])


def test_neural_top_shapes_the_grid_only():
    """neural_top changes which neural null cells exist, not any run's id or null file (like repeats)."""
    base = ExperimentConfig(models=["cm", "mlp"], splits=["random"], repeats=1, folds=2, nulls={"top": 4})
    more = base.updated(nulls={"top": 4, "neural_top": 2})
    ids = {s.label(): s.run_id for s in build_grid(base)}
    ids_more = {s.label(): s.run_id for s in build_grid(more)}
    assert all(ids_more[label] == rid for label, rid in ids.items() if label in ids_more)
    assert set(ids) > set(ids_more)  # neural_top 19 → min(4, 19) = 4 nulls; 2 → 2 nulls for mlp
    assert "neural_top" not in build_grid(base)[-1].settings_dict["nulls"]
    assert list(more.null_families()) == ["anatomical(top=4)"]  # the label ignores neural_top
    with pytest.raises(ValueError, match=r"'nulls\[1\]'.*both resolve to"):
        ExperimentConfig(nulls=[{"method": "cge"}, {"method": "cge", "neural_top": 5}])


def test_grid_slices_by_null_index():
    cfg = ExperimentConfig(models=["cm"], splits=["random"], repeats=2, folds=2, nulls={"top": 3})
    grid = build_grid(cfg)
    first = select_runs(grid, {"null_index": [0, 1]})
    assert {s.null_index for s in first} == {0, 1} and len(first) == 2 * 2 * 2
    rest = select_runs(grid, {"null_index": "2"})
    true = select_runs(grid, {"input": "true"})
    assert {s.run_id for s in first} | {s.run_id for s in rest} | {s.run_id for s in true} == {s.run_id for s in grid}
    with pytest.raises(ValueError, match="null_index=5 is not in the grid"):
        select_runs(grid, {"null_index": [5]})


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
    one = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=1, nulls={"top": 3}))}
    ten = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=10, nulls={"top": 3}))}
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
        (
            {"nulls": {"neural_top": 0}},
            r"'nulls.neural_top' must be an integer >= 1 .*min\(nulls.top, nulls.neural_top\).*got 0",
        ),
        ({"nulls": {"neural_top": 2.5}}, r"'nulls.neural_top' must be an integer >= 1.*got 2.5"),
        ({"nulls": {"neural_top": True}}, r"'nulls.neural_top'.*got True"),
        ({"nulls": [{"method": "moran"}, {"method": "cge", "neural_top": "all"}]}, r"'nulls\[1\].neural_top'"),
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
        "neural_top": NULL_DEFAULTS["neural_top"],
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
