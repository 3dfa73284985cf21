"""`spatiomol run` from flags alone, `--report`, and user-facing errors."""

from __future__ import annotations

from spatiomol.cli.main import main
from spatiomol.experiments.store import ResultsStore

DATASET = "synthetic:n_regions=40,n_genes=30,seed=2"


def test_run_from_flags_then_report(tmp_path, capsys):
    out = tmp_path / "x"
    code = main(["run", "--dataset", DATASET, "--models", "cm,exp-decay", "--splits", "random", "--repeats", "1",
                 "--folds", "4", "--inputs", "true", "--no-tuning", "--no-progress", "--out", str(out), "--report"])
    assert code == 0
    df = ResultsStore(out).load()
    assert df["run_id"].nunique() == 8 and set(df["model"]) == {"cm", "exp-decay"}
    manifest = ResultsStore(out).read_manifest()
    assert manifest["config"]["tuning"] is False and manifest["config"]["datasets"] == [DATASET]
    assert (out / "report.md").exists() and "8 run now" in capsys.readouterr().out


def test_bad_flags_and_files_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", "--dataset", DATASET, "--splits", "blocks", "--out", str(tmp_path / "y")]) == 2
    assert "'splits'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "z")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
