"""Run claims: two processes on one results folder compute each run once, and a claimant
that dies loses nothing (its claim goes stale and the run is computed by the other)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pandas as pd

from spatiomol.experiments import store as store_module
from spatiomol.experiments.config import load_config
from spatiomol.experiments.grid import build_grid
from spatiomol.experiments.runner import run_experiment
from spatiomol.experiments.store import TIMING_COLUMNS, ResultsStore

TIMING = list(TIMING_COLUMNS)  # cost is the only field allowed to differ between runs

#: `spatiomol` with compute_run wrapped. argv: log file, go file, die at (0: never), delay (s), CLI argv.
#: The first run waits (holding its claim) until the go file exists; finished runs are logged.
WRAPPED = """
import os, signal, sys, time
from pathlib import Path
from spatiomol.experiments import execute
from spatiomol.cli.main import main

log, go, die_at, delay = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
compute, calls = execute.compute_run, []

def wrapped(spec, store):
    calls.append(spec.run_id)
    if len(calls) == 1:
        (go.parent / f"ready-{os.getpid()}").touch()
        while not go.exists():
            time.sleep(0.01)
    if len(calls) == die_at:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(delay)
    out = compute(spec, store)
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()} {spec.run_id}\\n")
    return out

execute.compute_run = wrapped
sys.exit(main(sys.argv[5:]))
"""


def test_claims_are_exclusive_and_stale_ones_are_broken(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    with store.claimed("r1") as held:
        assert held
        holder = json.loads(store.claim_path("r1").read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        with ResultsStore(tmp_path).claimed("r1") as again:
            assert not again  # held by a live process (this one)
        assert store.claim_active("r1")
    assert not store.claim_path("r1").exists() and not store.claim_active("r1")

    # a dead process of this host: stale at once
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "host": socket.gethostname(), "time": time.time(), "token": "t"}
    store.claim_path("r2").write_text(json.dumps(record))
    assert not store.claim_active("r2")
    with store.claimed("r2") as held:
        assert held and json.loads(store.claim_path("r2").read_text())["pid"] == os.getpid()
    assert not any(store.claims_dir.glob("r2*"))  # the stale claim moved aside was removed

    # another host's claim (or one still being written, empty): live until not refreshed in time
    for rid, text in (("r3", json.dumps({**record, "pid": 1, "host": "elsewhere"})), ("r4", "")):
        path = store.claim_path(rid)
        path.write_text(text)
        with store.claimed(rid) as held:
            assert not held
        old = time.time() - store_module.CLAIM_STALE_SECONDS - 1
        os.utime(path, (old, old))
        with store.claimed(rid) as held:
            assert held

    # the holder refreshes its claim while it works
    monkeypatch.setattr(store_module, "CLAIM_HEARTBEAT_SECONDS", 0.02)
    with store.claimed("r5") as held:
        old = time.time() - 100
        os.utime(store.claim_path("r5"), (old, old))
        deadline = time.monotonic() + 5
        while store.claim_path("r5").stat().st_mtime < old + 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held and time.time() - store.claim_path("r5").stat().st_mtime < 50


def test_two_processes_share_a_folder_and_one_dies(tmp_path, config_file):
    """A and B start on one empty folder at once. A stores 2 runs and dies (SIGKILL) while
    holding the claim of its third; B computes every other run, A's third included."""
    config = config_file(models=["cm", "exp-decay"], splits=["random"], repeats=1, inputs=["true", "permuted"])
    n_runs = len(build_grid(load_config(config)))
    out, log, go = tmp_path / "shared", tmp_path / "log.txt", tmp_path / "go"
    cli = ["run", str(config), "--out", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(die_at: int, delay: float) -> subprocess.Popen:
        argv = [sys.executable, "-c", WRAPPED, str(log), str(go), str(die_at), str(delay), *cli]
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    a, b = start(die_at=3, delay=0.0), start(die_at=0, delay=0.05)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        assert a.poll() is None and b.poll() is None, (a.communicate(), b.communicate())
        time.sleep(0.01)
    go.touch()  # both now hold the claim of their first run
    b_out, b_err = b.communicate(timeout=120)
    a.communicate(timeout=60)
    assert a.returncode == -9 and b.returncode == 0, b_err

    finished = [line.split() for line in log.read_text().splitlines()]
    by_pid = pd.Series([pid for pid, _ in finished]).value_counts()
    assert len({rid for _, rid in finished}) == len(finished) == n_runs  # every run computed exactly once
    assert by_pid[str(a.pid)] == 2 and by_pid[str(b.pid)] == n_runs - 2
    assert f"{n_runs} planned, 0 already done, {n_runs - 2} run now, 0 failed, 2 run by other processes" in b_out
    assert not any(ResultsStore(out).claims_dir.glob("*.claim"))

    clean = run_experiment(load_config(config), tmp_path / "clean", progress=False, log=lambda m: None)
    assert clean.done == n_runs
    pd.testing.assert_frame_equal(
        ResultsStore(out).load().drop(columns=TIMING),
        ResultsStore(tmp_path / "clean").load().drop(columns=TIMING),
        check_exact=True,
    )


def test_runs_claimed_elsewhere_are_waited_for_and_taken_over_when_abandoned(tmp_path, make_grid_config, monkeypatch):
    """Run 0 is being computed by a process on another host (it stores it later), run 1 is
    held by a dead local process, run 2 by another host that gives up (removes its claim
    without storing): this process computes 1, 2 and 3 and counts 0 as run elsewhere."""
    import threading

    from spatiomol.experiments import runner
    from spatiomol.experiments.config import ExperimentConfig

    monkeypatch.setattr(runner, "CLAIM_POLL_SECONDS", 0.05)
    config = ExperimentConfig.from_dict(make_grid_config(models=["cm"], splits=["random"], repeats=1, inputs=["true"]))
    specs = build_grid(config)
    reference = run_experiment(config, tmp_path / "reference", progress=False, log=lambda m: None)
    assert reference.done == len(specs) == 4

    out = tmp_path / "shared"
    store = ResultsStore(out)
    store.claims_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    elsewhere = {"pid": 1, "host": "elsewhere", "time": time.time(), "token": "x"}
    store.claim_path(specs[0].run_id).write_text(json.dumps(elsewhere))
    dead_here = {**elsewhere, "pid": dead.pid, "host": socket.gethostname()}
    store.claim_path(specs[1].run_id).write_text(json.dumps(dead_here))
    store.claim_path(specs[2].run_id).write_text(json.dumps(elsewhere))

    def other_process() -> None:
        time.sleep(0.3)
        record, _ = runner.compute_run(specs[0], store)
        store.write_run(specs[0].key, **record)
        store.claim_path(specs[0].run_id).unlink()
        store.claim_path(specs[2].run_id).unlink()  # gave up on run 2

    thread = threading.Thread(target=other_process)
    thread.start()
    summary = run_experiment(config, out, progress=False, log=lambda m: None)
    thread.join()
    assert (summary.done, summary.by_others, summary.failed) == (3, 1, [])
    assert set(summary.run_seconds) == {s.label() for s in specs[1:]}
    pd.testing.assert_frame_equal(
        store.load().drop(columns=TIMING),
        ResultsStore(tmp_path / "reference").load().drop(columns=TIMING),
        check_exact=True,
    )
