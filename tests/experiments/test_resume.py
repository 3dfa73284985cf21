"""Kill -9 mid-grid, restart, and end with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd

from spatiomol.experiments.config import load_config
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.store import ResultsStore

TIMING = ["fit_seconds"]  # wall time is the only field allowed to differ between runs


def _run_cli(cli, config, out, env):
    return subprocess.run(
        [*cli, "run", str(config), "--out", str(out), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, config_file, spatiomol_cli):
    # tuning on: each run fits several candidates, so the grid takes long enough to kill mid-way
    config = config_file(tuning=True, n_configs=3)
    n_runs = len(build_grid(load_config(config)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    killed_dir = tmp_path / "killed"
    store = ResultsStore(killed_dir)
    proc = subprocess.Popen(
        [*spatiomol_cli, "run", str(config), "--out", str(killed_dir), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while len(store.done_ids()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(store.done_ids())
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert 3 <= done_at_kill < n_runs, f"kill landed after {done_at_kill} of {n_runs} runs"

    resumed = _run_cli(spatiomol_cli, config, killed_dir, env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_at_kill} already done, {n_runs - done_at_kill} run now, 0 failed" in resumed.stdout

    clean_dir = tmp_path / "clean"
    clean = _run_cli(spatiomol_cli, config, clean_dir, env)
    assert clean.returncode == 0, clean.stderr

    a = store.load().drop(columns=TIMING)
    b = ResultsStore(clean_dir).load().drop(columns=TIMING)
    assert a["run_id"].nunique() == n_runs
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # a third invocation has nothing left to do
    again = _run_cli(spatiomol_cli, config, killed_dir, env)
    assert f"{n_runs} already done, 0 run now" in again.stdout
