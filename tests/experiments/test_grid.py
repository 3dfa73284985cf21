"""Grid construction and configuration parsing."""

from __future__ import annotations

import pytest
import yaml

from spatiomol.experiments.config import ExperimentConfig, load_config
from spatiomol.experiments.grid import build_grid, null_index_for, random_permutation


def test_yaml_bare_true_and_null_are_input_kinds(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndatasets: hcp-s100\nmodels: [cm]\ninputs: [true, null]\nrepeats: 1\n")
    cfg = load_config(path)
    assert cfg.inputs == ["true", "null"] and cfg.datasets == ["hcp-s100"]
    toml = tmp_path / "c.toml"
    toml.write_text('name = "x"\nmodels = ["cm"]\ninputs = ["true"]\n')
    assert load_config(toml).models == ["cm"]


def test_grid_counts_and_null_assignment():
    cfg = ExperimentConfig(models=["exp-decay", "cm", "cm-pca"], splits=["random", "spatial"], repeats=3, folds=4,
                           inputs=["true", "null"], variants=[{"model": "cm", "input": "permuted"}])
    specs = build_grid(cfg)
    # exp-decay reads no expression: true only; cm, cm-pca: true + null; variant: random only
    expected = 1 * 2 * 12 + 2 * 2 * 2 * 12 + 1 * 12
    assert len(specs) == expected == len({s.run_id for s in specs})
    nulls = [s for s in specs if s.input == "null"]
    assert {(s.repeat, s.fold, s.null_index) for s in nulls} == {
        (r, f, (r * 4 + f) % 10) for r in range(3) for f in range(4)}
    assert sorted({s.null_index for s in nulls}) == list(range(10))  # 12 splits cycle through the 10 nulls
    assert all(s.null_index == -1 for s in specs if s.input != "null")
    # the paper's 10 x 4 protocol uses null k for splits k and k + 10, ..., each exactly 4 times
    counts = [sum(null_index_for(r, f, 4, 10) == k for r in range(10) for f in range(4)) for k in range(10)]
    assert counts == [4] * 10


def test_variants_dedupe_with_main_grid_and_seeds_are_paired():
    cfg = ExperimentConfig(models=["cm"], splits=["random"], repeats=1, inputs=["true", "permuted"],
                           variants=[{"model": "cm", "input": "permuted"}])
    specs = build_grid(cfg)
    assert len(specs) == 8
    true0 = next(s for s in specs if s.input == "true" and s.fold == 0)
    perm0 = next(s for s in specs if s.input == "permuted" and s.fold == 0)
    assert true0.derived_seed("model") == perm0.derived_seed("model")  # paired true/null training seeds
    assert true0.run_id != perm0.run_id
    p = random_permutation(40, perm0.derived_seed("permutation"))
    assert sorted(p) == list(range(40))


def test_extending_repeats_keeps_run_ids():
    one = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=1))}
    ten = {s.run_id for s in build_grid(ExperimentConfig(models=["cm"], repeats=10))}
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
