"""Neural training throughput before/after issue 11 (MLP and SMT), measured side by side.

On hcp-s400 (414 regions, 282 genes) and hcp-s100 (114 regions, 810 genes) — training
edges: all pairs of a random 75 % of regions — at each model's default configuration
(``models/configs``), a full training step (forward, MSE, backward, AdamW step; dropout
on) is timed for:

- ``path``: ``before`` — the code path before issue 11 (MLP: `PairMLPNetwork.forward_per_pair`,
  the whole network on ``[f_i ‖ f_j]`` per pair; SMT: `SMTNetwork.forward_pairwise_decoder`,
  regions encoded once but the decoder run per pair); ``after`` — what `fit` runs now
  (first layer of the MLP / of the SMT decoder once per distinct region, gathered per pair,
  `spatiomol.models.mlp.pair_head`);
- ``threads``: torch's default (every core; what a fit used before) or 1 (the new
  ``num_threads`` default);
- one extra row per model: ``after`` with ``batching="region_blocks"`` (different batches,
  so different numbers; shown for scale, not part of the identical-output comparison).

Cells are measured in interleaved rounds (``--rounds``) of ``--steps`` timed steps after a
warm-up step, so slow phases of a shared machine hit every cell alike; the median seconds
per step gives pairs/s and the projected seconds per epoch. Outputs: at identical weights
and batch, the largest |Δ| between the two paths of the outputs and of the gradients (same
seed, so the same dropout masks), and after ``--train-steps`` steps of training from the
same start on the same batches, the largest |Δ| of the predictions on held-out pairs,
beside the |Δ| that only changing the thread count gives on the old path (float rounding
is amplified by training either way).

Full epochs (``--epoch-datasets``, hcp-s400 by default): the real training loop,
`spatiomol.models.training.train_network` with a one-epoch budget and validation edges (all
pairs of the held-out 25 % of regions), so an epoch's time includes batching, every
optimiser step, the validation predictions, the early-stopping snapshot and the restore —
for the ``before`` path at torch's default thread count and for candidate default settings
of the current path: batch size, ``batching`` (random / region_blocks) and 1 vs 2 threads.
Cells are interleaved over ``--epoch-rounds`` rounds; the table gives the median wall and
CPU seconds per epoch. (The ``before`` SMT row validates with the current per-region
prediction; validation is a small part of an epoch either way.) Rows other than ``before``
/ ``after`` at the default batch size and random batching see different batches or batch
sizes, so they train differently: they are candidate settings, not identical outputs.

Goals (issue 11): per-epoch throughput ≥ 4× before for the MLP and ≥ 2× for the SMT
(before: the old path at the default thread count).

Threads and load: with the OpenMP default wait policy, torch's worker threads spin while
waiting, and on a machine whose cores are busy with other jobs a 2-thread step can take tens
of times longer than a 1-thread one; ``OMP_WAIT_POLICY=PASSIVE`` (read when torch is imported;
it changes waiting, not the work split, so not the numbers) avoids that. The header records it.

Run: ``SPATIOMOL_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/perf/neural_throughput.py``
(writes ``benchmarks/results/neural_throughput.md``; ``--output`` names another file, e.g.
``results/neural_throughput_epochs.md`` for an epoch-only run with ``--datasets``).
``--quick``: the MLP only, one round of one step per cell on a small synthetic brain, epochs at
one thread.
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
from spatiomol.data.brain import Brain, pairs_within
from spatiomol.models.batching import random_batches, region_block_batches
from spatiomol.models.device import seeded_torch
from spatiomol.models.registry import make_model
from spatiomol.models.training import TrainingSettings, train_network

#: a brain with a few full batches of training pairs at the default batch sizes
QUICK_BRAIN = "synthetic:n_regions=80,n_genes=120,seed=0"
#: ``--quick``: the MLP only (the SMT's paths: smt_throughput.py --quick), one round of one step per cell on a
#: small synthetic brain, epochs at one thread
QUICK = {
    "datasets": [QUICK_BRAIN],
    "rounds": 1,
    "steps": 1,
    "train_steps": 2,
    "epoch_datasets": [QUICK_BRAIN],
    "models": ["mlp"],
    "epoch_rounds": 1,
    "epoch_threads": [1],
}
GOALS = {"mlp": 4.0, "smt": 2.0}


def training_setup(brain: Brain, name: str, seed: int = 0) -> dict[str, Any]:
    """A model's network, initial weights, region tensors and 75% training split, shared by the epoch timings."""
    model = make_model(name, device="cpu", seed=seed)
    if name == "smt":
        model.set_params(gene_order="as_given")  # token order does not change the cost
    rng = np.random.default_rng(seed)
    train = np.sort(rng.permutation(brain.n_regions)[: int(0.75 * brain.n_regions)])
    held_out = np.setdiff1d(np.arange(brain.n_regions), train)
    i, j = pairs_within(train)
    with seeded_torch(seed, torch.device("cpu")):
        network = model._build_network(brain.n_genes)
    return {
        "model": model,
        "state": {k: v.clone() for k, v in network.state_dict().items()},
        "tensors": model._region_tensors(brain),
        "pairs": (i, j, brain.targets(i, j)),
        "held_out": pairs_within(held_out),
        "batch_size": int(model.batch_size),
        "n_genes": brain.n_genes,
    }


def _forward(network: torch.nn.Module, name: str, path: str):
    if path == "after":
        return network.forward
    return network.forward_per_pair if name == "mlp" else network.forward_pairwise_decoder


def _network(setup: dict[str, Any]) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = setup["model"]
    network = model._build_network(setup["n_genes"])
    network.load_state_dict(setup["state"])
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=float(model.learning_rate), weight_decay=float(model.weight_decay), foreach=True
    )
    return network.train(), optimizer


def _step(network, forward, optimizer, tensors, i, j, y, positions) -> torch.Tensor:
    it, jt = torch.as_tensor(i[positions]), torch.as_tensor(j[positions])
    loss = torch.nn.functional.mse_loss(forward(tensors, it, jt), torch.as_tensor(y[positions], dtype=torch.float32))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def time_cell(setup: dict, name: str, path: str, threads: int, batching: str, steps: int, seed: int) -> list[float]:
    """Wall and CPU seconds per step for ``steps`` steps after one warm-up step."""
    i, j, y = setup["pairs"]
    rng = np.random.default_rng(seed)
    B = setup["batch_size"]
    make = random_batches(len(i), B, rng) if batching == "random" else region_block_batches(i, j, B, rng)
    batches = [b for b in make if len(b) == B]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with seeded_torch(seed, torch.device("cpu")):
            network, optimizer = _network(setup)
            forward = _forward(network, name, path)
            _step(network, forward, optimizer, setup["tensors"], i, j, y, batches[0])
            wall, cpu = time.perf_counter(), time.process_time()
            for positions in batches[1 : steps + 1]:
                _step(network, forward, optimizer, setup["tensors"], i, j, y, positions)
            return [(time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps]
    finally:
        torch.set_num_threads(previous)


#: batch sizes of the epoch table per model: the default first, then larger candidates
EPOCH_BATCHES = {"mlp": (256, 1024, 2048), "smt": (512, 1024, 2048)}


def epoch_cells(name: str, threads: list[int]) -> list[tuple[str, int, str, int]]:
    """Epoch cells ``(path, threads, batching, batch size)`` for each thread count: the
    ``before`` path at the default batch, then the current path with random and region-block
    batches at each batch size of `EPOCH_BATCHES`."""
    default, *larger = EPOCH_BATCHES[name]
    cells = []
    for t in threads:
        cells += [("before", t, "random", default), ("after", t, "random", default)]
        cells += [("after", t, "region_blocks", default)]
        for batch in larger:
            cells += [("after", t, "random", batch), ("after", t, "region_blocks", batch)]
    return cells


def time_epoch(
    setup: dict, brain: Brain, name: str, path: str, threads: int, batching: str, batch_size: int, seed: int
) -> tuple[float, float, int]:
    """Wall and CPU seconds of one full epoch of `train_network` (validation included) and its steps."""
    model = setup["model"]
    settings = TrainingSettings(
        learning_rate=float(model.learning_rate),
        weight_decay=float(model.weight_decay),
        batch_size=batch_size,
        epochs=1,
        patience=1,
        batching=batching,
        device=torch.device("cpu"),
        seed=seed,
    )
    hi, hj = setup["held_out"]
    val_pairs = (hi, hj, brain.targets(hi, hj))
    with seeded_torch(seed, torch.device("cpu"), num_threads=threads):
        network, _ = _network(setup)
        if path == "before":  # nn.Module.__call__ runs the instance's forward
            network.forward = _forward(network, name, "before")
        wall, cpu = time.perf_counter(), time.process_time()
        history = train_network(network, setup["tensors"], setup["pairs"], settings, val_pairs=val_pairs)
        return time.perf_counter() - wall, time.process_time() - cpu, history.steps


def measure_epochs(brain: Brain, dataset: str, name: str, rounds: int, threads: list[int], lines: list) -> dict:
    """Interleaved full-epoch timings of `epoch_cells`; appends table rows (throughput relative
    to the ``before`` row at the same thread count), returns the medians."""
    setup = training_setup(brain, name)
    cells = epoch_cells(name, threads)
    samples: dict[tuple, list] = {cell: [] for cell in cells}
    for round_ in range(rounds):
        for cell in cells:
            samples[cell].append(time_epoch(setup, brain, name, *cell, seed=round_))
            print(dataset, name, "epoch", round_, cell, f"{samples[cell][-1][0]:.2f} s", flush=True)
    medians = {cell: np.median(np.array(v), axis=0) for cell, v in samples.items()}
    before = {cell[1]: medians[cell] for cell in cells if cell[0] == "before"}
    for cell in cells:
        wall, cpu, steps = medians[cell]
        path, n_threads, batching, batch_size = cell
        base_wall, base_cpu, _ = before[n_threads]
        lines.append(
            f"| {dataset} | {name.upper()} | {path} | {n_threads} | {batching} | {batch_size} | {steps:.0f} | "
            f"{wall:.2f} | {cpu:.2f} | {wall / steps * 1000:.0f} | {base_wall / wall:.2f}× | {base_cpu / cpu:.2f}× |"
        )
    return medians


def agreement(setup: dict, name: str, train_steps: int, threads: int, seed: int = 0) -> dict[str, float]:
    """Largest |Δ| between the paths: outputs and gradients at identical weights; held-out
    predictions after ``train_steps`` identical training steps, beside the |Δ| that changing
    only the thread count (1 → ``threads``) gives on the old path (float rounding either way)."""
    i, j, y = setup["pairs"]
    B = setup["batch_size"]
    batches = random_batches(len(i), B, np.random.default_rng(seed))[:train_steps]
    out: dict[str, Any] = {}
    predictions = {}
    for path, n_threads in (("before", 1), ("after", 1), ("before", threads)):
        with seeded_torch(seed, torch.device("cpu"), num_threads=n_threads):
            network, optimizer = _network(setup)
            forward = _forward(network, name, path)
            it, jt = torch.as_tensor(i[batches[0]]), torch.as_tensor(j[batches[0]])
            output = forward(setup["tensors"], it, jt)
            grads = torch.autograd.grad(output.square().sum(), list(network.parameters()))
            out[path, n_threads] = (output.detach(), [g.detach() for g in grads])
            for positions in batches:
                _step(network, forward, optimizer, setup["tensors"], i, j, y, positions)
            network.eval()
            hi, hj = setup["held_out"]
            with torch.no_grad():
                predictions[path, n_threads] = forward(
                    setup["tensors"], torch.as_tensor(hi), torch.as_tensor(hj)
                ).numpy()
    (o1, g1), (o2, g2) = out["before", 1], out["after", 1]
    reference = predictions["before", 1]
    return {
        "output": float((o1 - o2).abs().max()),
        "output_scale": float(o1.abs().max()),
        "gradient": max(float((a - b).abs().max()) for a, b in zip(g1, g2)),
        "gradient_scale": max(float(a.abs().max()) for a in g1),
        "prediction": float(np.abs(reference - predictions["after", 1]).max()),
        "prediction_threads": float(np.abs(reference - predictions["before", threads]).max()),
        "prediction_sd": float(reference.std()),
    }


def parse(argv: list[str] | None) -> Any:
    parser = harness.make_parser(__doc__)
    parser.add_argument("--datasets", nargs="*", default=["hcp-s400", "hcp-s100"], help="step table (none: skip)")
    parser.add_argument("--models", nargs="+", default=["mlp", "smt"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per cell and round")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--epoch-datasets", nargs="*", default=["hcp-s400"], help="full-epoch table (none: skip)")
    parser.add_argument("--epoch-rounds", type=int, default=2)
    parser.add_argument(
        "--epoch-threads", nargs="+", type=int, help="thread counts of the epoch table (default: 1 and torch's)"
    )
    parser.add_argument("--output", type=Path, help="the table's file (default: <out>/neural_throughput.md)")
    args = harness.parse_args(parser, argv, quick=QUICK)
    args.output = args.output or args.out / "neural_throughput.md"
    return args


def describe(dataset: str, brain: Brain) -> str:
    n_train = int(0.75 * brain.n_regions)
    n_edges = n_train * (n_train - 1) // 2
    return f"{dataset} ({brain.n_regions} regions, {brain.n_genes} genes, {n_edges:,} training edges)"


def step_section(args: Any, default_threads: int, datasets: list[str]) -> list[str]:
    """The per-step table (every model on every ``--datasets`` brain) and its verdicts."""
    cells = [("before", default_threads, "random"), ("before", 1, "random"), ("after", default_threads, "random")]
    cells += [("after", 1, "random"), ("after", 1, "region_blocks")]
    lines: list[str] = []
    verdicts: list[str] = []
    for dataset in args.datasets:
        brain = harness.load_brain(dataset)
        datasets.append(describe(dataset, brain))
        for name in args.models:
            measure(brain, dataset, name, cells, args, default_threads, lines, verdicts)
    if not lines:
        return []
    return [
        "| data | model | path | threads | batching | ms/step (wall) | ms/step (CPU) | pairs/s | s/epoch | vs before |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        *verdicts,
        "",
    ]


def epoch_section(args: Any, default_threads: int, datasets: list[str]) -> list[str]:
    """The full-epoch table (every ``--epoch-datasets`` brain) and its verdicts."""
    epoch_threads = args.epoch_threads or sorted({1, default_threads})
    lines: list[str] = []
    verdicts: list[str] = []
    for dataset in args.epoch_datasets:
        brain = harness.load_brain(dataset)
        if not any(d.startswith(f"{dataset} ") for d in datasets):
            datasets.append(describe(dataset, brain))
        for name in args.models:
            medians = measure_epochs(brain, dataset, name, args.epoch_rounds, epoch_threads, lines)
            base_cell = next(c for c in medians if c[0] == "before" and c[1] == max(epoch_threads))
            best_cell = min(medians, key=lambda c: medians[c][0])
            ratio = medians[base_cell][0] / medians[best_cell][0]
            verdicts.append(
                f"- {dataset}, {name.upper()}: fastest epoch {medians[best_cell][0]:.2f} s ({best_cell[1]} threads, "
                f"{best_cell[2]} batches of {best_cell[3]}) = {ratio:.2f}× before at {base_cell[1]} threads "
                f"({medians[base_cell][0]:.2f} s); goal ≥ {GOALS[name]:.0f}× "
                f"{'met' if ratio >= GOALS[name] else 'NOT met'} in this run."
            )
    if not lines:
        return []
    return [
        "## Full epochs (train_network: every step, validation, snapshot)",
        "",
        f"Median of {args.epoch_rounds} interleaved rounds of one epoch per cell. Training edges as above, "
        "validation edges: all pairs of the held-out 25 % of regions. `vs before`: per-epoch throughput "
        "relative to the model's `before` row at the same thread count, by wall and by CPU time (on a "
        "busy machine CPU time at 1 thread is the steadier measure).",
        "",
        "| data | model | path | threads | batching | batch | steps | s/epoch (wall) | s/epoch (CPU) "
        "| ms/step (wall, incl. validation) | vs before (wall) | vs before (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        *verdicts,
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load_start = os.getloadavg()
    default_threads = torch.get_num_threads()
    datasets: list[str] = []
    steps = step_section(args, default_threads, datasets)
    epochs = epoch_section(args, default_threads, datasets)
    text = "\n".join(
        [
            "# Neural training throughput: before/after issue 11",
            "",
            f"Generated by `benchmarks/perf/neural_throughput.py` on {'; '.join(datasets)}; default configurations "
            f"(MLP batch 256, SMT batch 512), dropout on, AdamW step included. Median of {args.rounds} "
            f"interleaved rounds of {args.steps} steps per cell. {harness.machine_header(load_start)} `threads`: "
            f"torch CPU threads ({default_threads} = torch's default here; OMP_WAIT_POLICY "
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}). Epoch = projected from s/step × steps per epoch.",
            "",
            *steps,
            *epochs,
        ]
    )
    harness.write_summary(args.output, text)
    return 0


def measure(
    brain: Brain, dataset: str, name: str, cells: list, args: Any, default_threads: int, lines: list, verdicts: list
) -> None:
    """Time every cell for one model on one brain; append table rows and a verdict line."""
    setup = training_setup(brain, name)
    n_pairs, B = len(setup["pairs"][0]), setup["batch_size"]
    samples: dict[tuple, list[list[float]]] = {cell: [] for cell in cells}
    for round_ in range(args.rounds):
        for cell in cells:
            samples[cell].append(time_cell(setup, name, *cell, steps=args.steps, seed=round_))
            print(dataset, name, round_, cell, f"{samples[cell][-1][0]:.3f} s/step", flush=True)
    medians = {cell: np.median(np.array(v), axis=0) for cell, v in samples.items()}
    base = medians[cells[0]][0]
    for cell in cells:
        wall, cpu = medians[cell]
        path, threads, batching = cell
        lines.append(
            f"| {dataset} | {name.upper()} | {path} | {threads} | {batching} | {wall * 1000:.0f} | {cpu * 1000:.0f} | "
            f"{B / wall:,.0f} | {wall * -(-n_pairs // B):.1f} | {base / wall:.2f}× |"
        )
    speedup = base / medians[("after", 1, "random")][0]
    # at one thread CPU time measures the work without the time spent descheduled on a busy machine
    code_only = medians[("before", 1, "random")][1] / medians[("after", 1, "random")][1]
    check = agreement(setup, name, args.train_steps, default_threads)
    goal = ""
    if dataset == "hcp-s400":  # the goals are stated for hcp-s400
        goal = f" — goal ≥ {GOALS[name]:.0f}× {'met' if speedup >= GOALS[name] else 'NOT met'}"
    verdicts.append(
        f"- {dataset}, {name.upper()}: after (1 thread) vs before ({default_threads} threads) {speedup:.2f}×{goal}; "
        f"the code path alone (both at 1 thread, CPU time) {code_only:.2f}×. Same weights and batch: max |Δ output| "
        f"{check['output']:.1e} (outputs up to {check['output_scale']:.2f}), max |Δ gradient| "
        f"{check['gradient']:.1e} (gradients up to {check['gradient_scale']:.0f}). After {args.train_steps} "
        f"identical training steps the held-out predictions (SD {check['prediction_sd']:.3f}) differ by at most "
        f"{check['prediction']:.1e} between the paths, and by {check['prediction_threads']:.1e} between 1 and "
        f"{default_threads} threads on the old path: float rounding, amplified alike by training."
    )


if __name__ == "__main__":
    raise SystemExit(main())
