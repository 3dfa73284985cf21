"""benchmarks/run_all.py: results.md carries the long-running studies' tables (issue 11 asks
for the ablation table there, under a heading with the word "ablation")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refresh_keeps_the_measured_tables_and_replaces_only_the_long_running_section(tmp_path):
    run_all = load_run_all()
    out = tmp_path / "results.md"
    measured = "# spatiomol benchmarks\n\n## Closed-form Connectome Model\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    out.write_text(measured)
    run_all.refresh_long_running(out)
    once = out.read_text()
    run_all.refresh_long_running(out)  # idempotent: the section is replaced, not appended again
    assert out.read_text() == once and once.startswith(measured)
    assert once.count(run_all.LONG_RUNNING_HEADING) == 1
    titles = [line for line in once.splitlines() if line.startswith("### ")]
    expected = [md.read_text().splitlines()[0].lstrip("# ") for md in run_all.long_running_tables()]
    assert [t.removeprefix("### ") for t in titles] == expected
    assert any("ablation" in t.lower() for t in titles) and (BENCHMARKS / "results" / "smt_ablation.md").exists()
