"""The MLP's compute floor on hcp-s400: how fast can one epoch be on this CPU at all?

Issue 11 asks for ≥ 4× the MLP's per-epoch training throughput on hcp-s400 (identical
outputs for identical settings). This benchmark measures what bounds that from below on
this machine, side by side in one run:

- ``epoch``: one real epoch of `spatiomol.models.training.train_network` at the MLP's
  default configuration (`neural_throughput.time_epoch`: every step, validation, snapshot),
  on the old per-pair path (``before``) and the current one (``after``);
- ``floor``: only the dense matrix products that any implementation of the same network
  must compute in that epoch, on the same random batches: the first layer once per distinct
  region of a batch (forward, weight gradient), and every later layer on the batch's 2B
  rows (both pair orders, averaged: forward, input gradient, weight gradient), written into
  preallocated outputs. No gather, normalisation, activation, dropout, loss or optimiser
  step: the floor is what an epoch would cost if everything but the matrix products were
  free.

``floor / before`` is then the largest per-epoch speed-up any change of code can give at
these settings on this CPU; larger batches (rows ``batch``) only show how the floor moves
when the settings change (a different fit, not identical outputs).

CPU time, not wall time, is compared (one thread: the work itself, steady under other
jobs). Run: ``SPATIOMOL_DATA_MIRROR=../shared/data .venv/bin/python
benchmarks/perf/mlp_compute_floor.py`` (writes ``results/mlp_compute_floor.md``; ``--quick``:
one round on hcp-s100 at the default batch).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from perf.neural_throughput import time_epoch, training_setup
from spatiomol.models.batching import random_batches

#: ``--quick``: one round on hcp-s100, the default batch only
QUICK = {"dataset": "hcp-s100", "rounds": 1, "batches": [256]}


def floor_epoch(pairs: tuple, n_genes: int, hidden: list[int], batch_size: int, threads: int, seed: int) -> float:
    """CPU seconds of the dense products of one epoch (see module docstring), at ``threads`` threads."""
    i, j, _ = pairs
    batches = list(random_batches(len(i), batch_size, np.random.default_rng(seed)))
    widths = [*hidden, 1]
    rows_max = 2 * batch_size
    regions_max = int(max(np.unique(np.concatenate([i[b], j[b]])).size for b in batches))
    gen = torch.Generator().manual_seed(seed)
    region_x = torch.randn(regions_max, n_genes, generator=gen)
    first_w = torch.randn(n_genes, widths[0], generator=gen)
    first_out = torch.empty(regions_max, widths[0])
    first_grad_w = torch.empty(n_genes, widths[0])
    acts = [torch.randn(rows_max, w, generator=gen) for w in widths]  # layer inputs / outputs
    grads = [torch.randn(rows_max, w, generator=gen) for w in widths]
    weights = [torch.randn(a, b, generator=gen) for a, b in zip(widths[:-1], widths[1:])]
    outs = [torch.empty(rows_max, b) for b in widths[1:]]
    grad_in = [torch.empty(rows_max, a) for a in widths[:-1]]
    grad_w = [torch.empty(a, b) for a, b in zip(widths[:-1], widths[1:])]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.process_time()
        for b in batches:
            n_regions = int(np.unique(np.concatenate([i[b], j[b]])).size)
            rows = 2 * len(b)
            x = region_x[:n_regions]
            for _ in range(2):  # W_a and W_b halves of the first layer
                torch.matmul(x, first_w, out=first_out[:n_regions])
                torch.matmul(x.T, first_out[:n_regions], out=first_grad_w)
            for k, w in enumerate(weights):
                torch.matmul(acts[k][:rows], w, out=outs[k][:rows])
                torch.matmul(grads[k + 1][:rows], w.T, out=grad_in[k][:rows])
                torch.matmul(acts[k][:rows].T, grads[k + 1][:rows], out=grad_w[k])
        return time.process_time() - start
    finally:
        torch.set_num_threads(previous)


def measure(setup: dict, brain: Any, args: Any, hidden: list[int], default_batch: int) -> tuple[dict, dict]:
    """CPU seconds per epoch of each path and of the floor at each batch size, interleaved rounds."""
    epochs: dict[tuple, list[float]] = {}
    floors: dict[tuple, list[float]] = {}
    for round_ in range(args.rounds):
        for threads in args.threads:
            for path in ("before", "after"):
                cpu = time_epoch(setup, brain, "mlp", path, threads, "random", default_batch, seed=round_)[1]
                epochs.setdefault((path, threads), []).append(cpu)
            for batch in args.batches:
                cpu = floor_epoch(setup["pairs"], brain.n_genes, hidden, batch, threads, seed=round_)
                floors.setdefault((batch, threads), []).append(cpu)
        print("round", round_, {k: f"{v[-1]:.2f}" for k, v in {**epochs, **floors}.items()}, flush=True)
    return epochs, floors


def table(args: Any, brain: Any, setup: dict, epochs: dict, floors: dict, load_start: tuple) -> str:
    hidden = [int(h) for h in setup["model"].hidden_dims]
    default_batch = int(setup["model"].batch_size)
    med = {k: float(np.median(v)) for k, v in {**epochs, **floors}.items()}
    before_default = med[("before", 1)] if 1 in args.threads else med[("before", args.threads[0])]
    lines = [
        f"# MLP compute floor: {args.dataset} ({brain.n_regions} regions, {brain.n_genes} genes)",
        "",
        f"Generated by `benchmarks/perf/mlp_compute_floor.py`: MLP default configuration (hidden {hidden}, "
        f"batch {default_batch}, both pair orders averaged), {len(setup['pairs'][0]):,} training edges, "
        f"median process CPU seconds of {args.rounds} interleaved rounds "
        "(at one thread the steady measure on a shared machine; at two it counts both cores). "
        f"{harness.machine_header(load_start)} `floor`: only the dense matrix products of the epoch (module "
        "docstring).",
        "",
        "| what | batch | threads | CPU s / epoch | before ÷ this |",
        "|---|---:|---:|---:|---:|",
    ]
    for (path, threads), _ in sorted(epochs.items(), key=lambda kv: (kv[0][1], kv[0][0] != "before")):
        s = med[(path, threads)]
        lines.append(f"| epoch, {path} path | {default_batch} | {threads} | {s:.2f} | {before_default / s:.2f}× |")
    for (batch, threads), _ in sorted(floors.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = med[(batch, threads)]
        lines.append(f"| floor: dense products only | {batch} | {threads} | {s:.2f} | {before_default / s:.2f}× |")
    goal_s = before_default / 4
    best_floor = min(med[(default_batch, t)] for t in args.threads)
    lines += [
        "",
        f"Goal (issue 11): ≥ 4× the MLP's per-epoch throughput at identical settings, i.e. an epoch in "
        f"≤ {goal_s:.2f} CPU s. The dense products alone take {best_floor:.2f} CPU s at the default batch "
        f"({before_default / best_floor:.2f}× before): the goal is "
        + ("within" if best_floor <= goal_s else "beyond")
        + " what this CPU's matrix multiply allows at these settings.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = harness.make_parser(__doc__)
    parser.add_argument("--dataset", default="hcp-s400")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024, 2048])
    parser.add_argument("--output", type=Path, help="the table's file (default: <out>/mlp_compute_floor.md)")
    args = harness.parse_args(parser, argv, quick=QUICK)
    brain = harness.load_brain(args.dataset)
    setup = training_setup(brain, "mlp")
    hidden = [int(h) for h in setup["model"].hidden_dims]
    load_start = os.getloadavg()
    epochs, floors = measure(setup, brain, args, hidden, int(setup["model"].batch_size))
    text = table(args, brain, setup, epochs, floors, load_start)
    harness.write_summary(args.output or args.out / "mlp_compute_floor.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
