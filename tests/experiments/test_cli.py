"""`spatiomol run` from flags alone, `--report`, and user-facing errors."""

from __future__ import annotations

from spatiomol.cli.main import main
from spatiomol.experiments.store import ResultsStore

DATASET = "synthetic:n_regions=40,n_genes=30,seed=2"


def test_run_from_flags_then_report(tmp_path, capsys):
    out = tmp_path / "x"
    code = main(
        [
            "run",
            "--dataset",
            DATASET,
            "--models",
            "cm,exp-decay",
            "--splits",
            "random",
            "--repeats",
            "1",
            "--folds",
            "4",
            "--inputs",
            "true",
            "--no-tuning",
            "--no-progress",
            "--out",
            str(out),
            "--report",
        ]
    )
    assert code == 0
    df = ResultsStore(out).load()
    assert df["run_id"].nunique() == 8 and set(df["model"]) == {"cm", "exp-decay"}
    manifest = ResultsStore(out).read_manifest()
    assert manifest["config"]["tuning"] is False and manifest["config"]["datasets"] == [DATASET]
    assert (out / "report.md").exists() and "8 run now" in capsys.readouterr().out


def test_only_runs_a_slice_of_the_grid_and_bad_slices_exit_2(tmp_path, capsys):
    out = tmp_path / "slice"
    flags = ["run", "--dataset", DATASET, "--models", "cm,exp-decay", "--splits", "random", "--repeats", "2"]
    flags += ["--folds", "4", "--inputs", "true", "--no-tuning", "--no-progress", "--out", str(out)]
    assert main([*flags, "--only", "repeat=1", "--only", "model=cm", "--only", "fold=0,2"]) == 0
    df = ResultsStore(out).load()
    assert df["run_id"].nunique() == 2 and set(df["model"]) == {"cm"} and set(df["repeat"]) == {1}
    assert sorted(set(df["fold"])) == [0, 2] and ResultsStore(out).read_manifest()["planned_runs"] == 16
    assert "grid slice repeat=1; model=cm; fold=0,2: 2 of 16 runs" in capsys.readouterr().out
    assert main([*flags, "--only", "fold=4"]) == 2
    assert "fold=4 is not in the grid (its fold values: 0, 1, 2, 3)" in capsys.readouterr().err
    assert main([*flags, "--only", "fold"]) == 2
    assert "--only expects FIELD=VALUE" in capsys.readouterr().err


def test_bad_flags_and_files_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", "--dataset", DATASET, "--splits", "blocks", "--out", str(tmp_path / "y")]) == 2
    assert "'splits'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "z")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_users_own_files_run_through_nulls_and_run_like_bundled_data(tmp_path, capsys):
    """A dataset YAML naming the user's CSV files: `spatiomol nulls` and `spatiomol run` accept
    it, and a stored true-input result equals a direct fit on the loaded brain."""
    import numpy as np
    import pandas as pd
    import yaml

    from spatiomol.data.sources import resolve_source
    from spatiomol.data.synthetic import make_synthetic_brain
    from spatiomol.evaluation import evaluate, make_splits
    from spatiomol.models.registry import make_model
    from spatiomol.nulls import NullSet

    brain = make_synthetic_brain(40, 30, rule="bilinear", seed=5)
    folder = tmp_path / "mine"
    folder.mkdir()
    expression = pd.DataFrame(brain.X, columns=list(brain.genes))
    expression.insert(0, "label", brain.labels)
    expression.to_csv(folder / "expression.csv", index=False)
    np.save(folder / "connectome.npy", brain.Y)
    brain.regions.to_csv(folder / "regions.csv", index=False)
    spec = folder / "mine.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"name": "mine", "expression": "expression.csv", "connectome": "connectome.npy", "regions": "regions.csv"}
        )
    )

    assert main(["nulls", str(spec), "--n", "300", "--top", "3", "--out", str(tmp_path / "n.npz")]) == 0
    assert NullSet.load(tmp_path / "n.npz").permutations.shape == (3, 40)

    out = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                "--dataset",
                str(spec),
                "--models",
                "cm",
                "--splits",
                "random",
                "--repeats",
                "1",
                "--folds",
                "4",
                "--inputs",
                "true,null",
                "--no-tuning",
                "--null-spins",
                "300",
                "--null-top",
                "2",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    df = ResultsStore(out).load()
    # 1 repeat of true runs; shared folds: each of the 2 kept nulls on each of the 4 folds
    counts = df.groupby("input")["run_id"].nunique().to_dict()
    assert counts == {"true": 4, "null": 8}
    null_runs = df[df["input"] == "null"].drop_duplicates("run_id")
    assert sorted(zip(null_runs["repeat"], null_runs["fold"], null_runs["null_index"])) == [
        (0, f, k) for f in range(4) for k in range(2)
    ]

    loaded = resolve_source(str(spec))
    split = make_splits(loaded, "random", n_repeats=1, n_folds=4, seed=0)[0]
    i, j = split.test_pairs()
    model = make_model("cm").fit(loaded, split.train)
    expected = {(r["metric"], r["stratum"]): r["value"] for r in evaluate(loaded, i, j, model.predict(loaded, i, j))}
    stored = df[(df["input"] == "true") & (df["fold"] == 0) & (df["metric"] == "pearson") & (df["stratum"] == "all")]
    assert np.isclose(stored["value"].item(), expected[("pearson", "all")], rtol=1e-9)


def test_demo_runs_the_packaged_config_from_any_directory(tmp_path, monkeypatch, spatiomol_cli):
    """`spatiomol demo` finds its configuration in the package, not in the working directory."""
    import os
    import subprocess
    from pathlib import Path

    import yaml

    import spatiomol.experiments
    from spatiomol.cli import run_commands
    from spatiomol.experiments.config import ExperimentConfig, demo_config_path, load_config

    packaged = demo_config_path()
    assert packaged.is_file() and packaged.parent.parent == Path(spatiomol.experiments.__file__).parent
    repository = Path(__file__).resolve().parents[2]
    assert not (repository / "configs" / "demo.yaml").exists()  # one copy: the packaged one

    other = tmp_path / "elsewhere"
    other.mkdir()
    env = {**os.environ, "COLUMNS": "400"}  # no line break inside the path
    shown = subprocess.run(
        [*spatiomol_cli, "demo", "--help"], cwd=other, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert f"(default: the packaged {packaged})" in shown.stdout

    ran = {}
    monkeypatch.chdir(other)
    monkeypatch.setattr(run_commands, "_run", lambda config, out, args: ran.update(config=config, out=out) or 0)
    monkeypatch.setattr("spatiomol.reports.report.write_report", lambda out: Path(out) / "report.md")
    assert main(["demo", "--out", "d"]) == 0
    expected = ExperimentConfig.from_dict(yaml.safe_load(packaged.read_text()))
    assert ran["config"] == expected == load_config(packaged) and ran["out"] == "d"
    assert ran["config"].datasets == ["hcp-s100"] and ran["config"].repeats == 1


def test_every_command_takes_every_kind_of_source(tmp_path, capsys):
    """`nulls` and `info` resolve sources as `run` does: a synthetic spec works everywhere."""
    from spatiomol.cli.main import main
    from spatiomol.data.sources import resolve_source
    from spatiomol.nulls import NullSet

    source = "synthetic:n_regions=60,n_genes=20,seed=3"
    out = tmp_path / "n.npz"
    assert main(["nulls", source, "--method", "moran", "--n", "30", "--top", "2", "--out", str(out)]) == 0
    assert NullSet.load(out).permutations.shape == (2, 60)
    assert main(["info", source]) == 0
    assert f"{resolve_source(source).n_regions} regions" in capsys.readouterr().out
