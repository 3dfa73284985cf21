"""Kill -9 mid-grid, restart, and end with exactly the rows of an uninterrupted run.

The kill is deterministic: the killed process wraps `execute.compute_run` so that it
SIGKILLs itself when it starts run N + 1, i.e. after exactly N runs were stored and while
it holds the claim of the next one (a dead claimant the restart must take over).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pandas as pd

from spatiomol.experiments.config import load_config
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import TIMING_COLUMNS, ResultsStore

TIMING = list(TIMING_COLUMNS)  # cost is the only field allowed to differ between runs
STORED_BEFORE_KILL = 3

#: `spatiomol` with compute_run wrapped: argv[1] = runs to store before dying, then the CLI's argv
KILL_AFTER = """
import os, signal, sys
from spatiomol.experiments import execute
from spatiomol.cli.main import main

stored, compute, calls = int(sys.argv[1]), execute.compute_run, []

def compute_or_die(spec, store):
    calls.append(spec.run_id)
    if len(calls) > stored:
        os.kill(os.getpid(), signal.SIGKILL)
    return compute(spec, store)

execute.compute_run = compute_or_die
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, config_file, spatiomol_cli):
    # tuned runs: the inner-CV selection resumes exactly too
    config = config_file(
        models=["cm"], splits=["random"], inputs=["true", "permuted"], repeats=1, tuning=True, n_configs=2
    )
    n_runs = len(build_grid(load_config(config)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    killed_dir = tmp_path / "killed"
    args = ["run", str(config), "--out", str(killed_dir), "--no-progress"]

    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(STORED_BEFORE_KILL), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = ResultsStore(killed_dir)
    assert len(store.done_ids()) == STORED_BEFORE_KILL < n_runs
    assert len(list(store.claims_dir.glob("*.claim"))) == 1  # the run it died in is still claimed

    resumed = subprocess.run([*spatiomol_cli, *args], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    expected_line = f"{STORED_BEFORE_KILL} already done, {n_runs - STORED_BEFORE_KILL} run now, 0 failed,"
    assert expected_line in resumed.stdout
    assert not any(store.claims_dir.glob("*.claim"))

    clean_dir = tmp_path / "clean"
    clean = run_experiment(load_config(config), clean_dir, progress=False, log=lambda m: None)
    assert clean.done == n_runs and not clean.failed

    a = store.load().drop(columns=TIMING)
    b = ResultsStore(clean_dir).load().drop(columns=TIMING)
    assert a["run_id"].nunique() == n_runs
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # a third invocation has nothing left to do
    again = run_experiment(load_config(config), killed_dir, progress=False, log=lambda m: None)
    assert (again.already_done, again.done) == (n_runs, 0)
