"""Run every speed benchmark in ``benchmarks/perf/`` and gather the tables into one file.

1. Each ``benchmarks/perf/*.py`` script runs in its own process, in name order, and
   (re)writes its ``benchmarks/results/<name>.md``. The long, resumable studies of
   ``benchmarks/studies/`` are not run here: ``results.md``
   carries their tables as last written by their own runs.
2. This script adds its own benchmark, ``results/split.md``: one full outer split
   (hcp-s100, random split, repeat 0 fold 0) of every model of Table 1 and Table 3, at
   the default configuration of ``models/configs`` (full training budgets) — fit and
   predict wall time, learned parameters, test Pearson r, and the fit time relative to
   the closed-form Connectome Model, the reference path.
3. ``--out`` (default ``benchmarks/results.md``) gets a header (machine, load), one
   summary table of the scripts run in this invocation (status, wall time), and every
   ``results/*.md`` measured in this run.

Run: ``.venv/bin/python benchmarks/run_all.py --out benchmarks/results.md``
(``make bench``). ``--quick`` uses the demo's reduced neural budgets
(the packaged ``demo.yaml``) for the split benchmark. Timings on a shared CPU are noisy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # `harness`, from any working directory

import harness  # noqa: E402

ROOT = HERE.parent
RESULTS = harness.RESULTS
LONG_RUNNING_HEADING = "## Long-running studies (tables as last written by their own runs, not re-measured here)"


def perf_scripts() -> list[Path]:
    """The speed benchmarks `run_scripts` measures: every script of ``perf/``."""
    return harness.script_paths(harness.PERF)


def study_scripts() -> list[Path]:
    """The resumable studies (hours; run on their own): every script of ``studies/``."""
    return harness.script_paths(harness.STUDIES)


def long_running_tables() -> list[Path]:
    """The ``results/*.md`` written by the studies (``<stem>.md``, ``<stem>_<dataset>.md``)."""
    stems = [path.stem for path in study_scripts()]
    return sorted(md for md in RESULTS.glob("*.md") if any(md.stem == s or md.stem.startswith(s + "_") for s in stems))


def long_running_section() -> list[str]:
    """`LONG_RUNNING_HEADING` and each long-running study's table, titles nested one level down."""
    lines = ["", LONG_RUNNING_HEADING, ""]
    lines.append(
        "Each table states the command, budget and machine of its own run; rerun a study with its "
        "script (resumable), then `run_all.py --refresh-long-running` to copy the tables here."
    )
    for md in long_running_tables():
        # one level below the section heading: "# Title" → "### Title", "## Part" → "#### Part"
        text = ["##" + line if line.startswith("#") else line for line in md.read_text().strip().splitlines()]
        lines += ["", *text]
    return lines


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    mirror = ROOT.parent / "shared" / "data"
    if "SPATIOMOL_DATA_MIRROR" not in env and (mirror / "SHA256SUMS").exists():
        env["SPATIOMOL_DATA_MIRROR"] = str(mirror)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_scripts(timeout_s: int) -> list[dict]:
    """Run each speed benchmark (`perf_scripts`); → rows ``{script, status, seconds}``."""
    rows = []
    for script in perf_scripts():
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(script)],
                cwd=ROOT,
                env=_environment(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-200:]}"
        except subprocess.TimeoutExpired:
            status = f"timeout after {timeout_s} s"
        name = script.relative_to(HERE).as_posix()
        rows.append({"script": name, "status": status, "seconds": time.perf_counter() - start})
        print(f"{name}: {status} ({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def split_benchmark(quick: bool) -> Path:
    """One full split of every model on hcp-s100; writes ``results/split.md``."""
    os.environ.update({k: v for k, v in _environment().items() if k == "SPATIOMOL_DATA_MIRROR"})
    import numpy as np

    from spatiomol.data.datasets import load_dataset
    from spatiomol.evaluation import evaluate, make_splits
    from spatiomol.experiments.config import demo_config_path, load_config
    from spatiomol.models import registry

    overrides = load_config(demo_config_path()).model_params if quick else {}
    brain = load_dataset("hcp-s100")
    split = make_splits(brain, "random", n_repeats=1, n_folds=4, seed=0)[0]
    i, j = brain.pairs(split.test)
    rows = []
    for name in [*registry.TABLE1, "mlp-coords-only"]:
        default, _ = registry.search_space(name)
        model = registry.make_model(name, **{**default, **overrides.get(name, {})})
        t0 = time.perf_counter()
        model.fit(brain, split.train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_pred = model.predict(brain, i, j)
        predict_s = time.perf_counter() - t0
        r = next(
            m["value"] for m in evaluate(brain, i, j, y_pred) if m["metric"] == "pearson" and m["stratum"] == "all"
        )
        rows.append((name, fit_s, predict_s, int(model.n_parameters_), r))
        print(f"split benchmark {name}: fit {fit_s:.2f} s, r = {r:.3f}", flush=True)
    reference = next(fit for name, fit, *_ in rows if name == "cm")
    lines = [
        "# One full split of every model (hcp-s100, random split r0 f0)",
        "",
        f"Generated by `benchmarks/run_all.py`{' --quick (demo budgets for neural models)' if quick else ''}. "
        f"{split.train.size} training regions ({split.train.size * (split.train.size - 1) // 2} edges), "
        f"{split.test.size} test regions ({i.size} edges); default configuration of "
        "`models/configs` (no inner-CV search), single wall-clock measurement on a shared CPU "
        f"(load average at the end: {harness.load_average()}). "
        "Ratio = fit time / closed-form Connectome Model fit time (the reference path).",
        "",
        "| model | fit (s) | predict (s) | fit / CM fit | learned parameters | test Pearson r |",
        "|---|---|---|---|---|---|",
    ]
    for name, fit_s, predict_s, n_params, r in rows:
        lines.append(
            f"| {registry.display_name(name)} | {fit_s:.3f} | {predict_s:.3f} | "
            f"{fit_s / reference:.1f} | {n_params:,} | {r:.3f} |"
        )
    total = float(np.sum([row[1] + row[2] for row in rows]))
    lines += ["", f"Total for one split of every model: {total:.1f} s.", ""]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "split.md"
    path.write_text("\n".join(lines))
    return path


def gather(rows: list[dict], out: Path, started: float) -> Path:
    """Write the combined Markdown file from this invocation's results."""
    header = [
        "# spatiomol benchmarks",
        "",
        f"Measured in one run of `benchmarks/run_all.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        f"{harness.machine_header()}",
        "",
        "| benchmark | status | wall time (s) |",
        "|---|---|---|",
    ]
    header += [f"| {r['script']} | {r['status']} | {r['seconds']:.1f} |" for r in rows]
    sections = []
    long_running = set(long_running_tables())
    for md in sorted(RESULTS.glob("*.md")):
        if md.stat().st_mtime < started or md in long_running:
            continue  # only tables measured in this invocation
        text = md.read_text().strip().splitlines()
        if text and text[0].startswith("# "):
            text[0] = "#" + text[0]  # nest each script's title under the file's title
        sections += ["", *text]
    out.write_text("\n".join(header + sections + long_running_section()) + "\n")
    return out


def refresh_long_running(out: Path) -> Path:
    """Replace the long-running studies' section of ``out`` (appended if absent); the tables
    measured by the last full run are kept as they are."""
    text = out.read_text()
    measured = text.split("\n" + LONG_RUNNING_HEADING + "\n")[0].rstrip("\n")
    out.write_text(measured + "\n" + "\n".join(long_running_section()) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results.md"), help="combined Markdown file")
    parser.add_argument(
        "--quick", action="store_true", help="demo budgets for the neural models in the split benchmark"
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per benchmark script")
    parser.add_argument("--skip-scripts", action="store_true", help="only the split benchmark")
    parser.add_argument(
        "--refresh-long-running",
        action="store_true",
        help="measure nothing: copy the long-running studies' current tables into --out",
    )
    args = parser.parse_args(argv)
    if args.refresh_long_running:
        print(f"wrote {refresh_long_running(Path(args.out))}")
        return 0
    started = time.time()
    rows = [] if args.skip_scripts else run_scripts(args.timeout)
    t0 = time.perf_counter()
    status = "ok"
    try:
        split_benchmark(args.quick)
    except Exception as err:  # noqa: BLE001 — recorded in the summary table
        status = f"failed: {type(err).__name__}: {err}"
    rows.append(
        {"script": "run_all.py (one split of every model)", "status": status, "seconds": time.perf_counter() - t0}
    )
    path = gather(rows, Path(args.out), started)
    print(f"wrote {path}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
