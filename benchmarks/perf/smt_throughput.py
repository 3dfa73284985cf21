"""SMT training throughput (pairs/s): per-pair path vs per-region path, side by side.

Goal (issue 6): at the paper's default architecture (d_model 128, 4 heads, 4 layers,
k = 60 genes per token, decoder [512, 256, 128], d_out 10, batch 512) on a synthetic
brain of the paper's size (456 regions × 7,380 genes = 123 tokens), the per-region path
trains at least 3× faster than the per-pair path.

Timed, on the same network, optimiser (AdamW) and training edges (all pairs of a
random 75 % of regions), a full training step (forward, MSE, backward, AdamW step):

- ``per-pair`` — `SMTNetwork.forward_per_pair`: both regions of every pair encoded
  (2 × 512 sequences per step), random batches (the reference implementation's way);
- ``per-region`` — `SMTNetwork.forward` (what `SMT.fit` runs): each distinct region of
  the batch encoded once, pairs gathered from region embeddings; random batches;
- ``per-region + region blocks`` — the same with ``batching="region_blocks"`` (batches
  built from blocks of ~sqrt(512) regions, every edge still once per epoch).

Each configuration runs ``--warmup`` steps, then ``--steps`` timed steps; pairs/s =
steps × 512 / seconds. Dropout is on (training mode), as in real training.

Run: ``SPATIOMOL_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/perf/smt_throughput.py``
Writes ``benchmarks/results/smt.md``. Wall clock on a shared CPU: absolute numbers are
noisy, ratios more telling. ``--quick``: one step per path on a small synthetic brain.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from spatiomol.data.brain import Brain, pairs_within
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.batching import random_batches, region_block_batches
from spatiomol.models.device import seeded_torch
from spatiomol.models.smt import SMT

#: ``--quick``: one timed step per path on a small synthetic brain (2 tokens of 60 genes)
QUICK = {
    "dataset": "synthetic:n_regions=80,n_genes=120,seed=0",
    "warmup": 0,
    "steps": 1,
    "threads": 1,
    "skip_paper_size": True,
}
PAPER_DEFAULT = dict(
    token_encoder_dim=60,
    d_model=128,
    nhead=4,
    num_layers=4,
    encoder_output_dim=10,
    deep_hidden_dims=[512, 256, 128],
    transformer_dropout=0.1,
    dropout_rate=0.2,
    batch_size=512,
    gene_order="as_given",
    device="cpu",
)


def time_path(brain: Brain, path: str, batching: str, warmup: int, steps: int, seed: int = 0) -> dict:
    """Seconds for ``steps`` training steps of one path; returns throughput and batch stats."""
    model = SMT(**PAPER_DEFAULT, seed=seed)
    device = torch.device("cpu")
    rng = np.random.default_rng(seed)
    train = np.sort(rng.permutation(brain.n_regions)[: int(0.75 * brain.n_regions)])
    pair_i, pair_j = pairs_within(train)
    y = brain.targets(pair_i, pair_j)
    with seeded_torch(seed, device):
        network = model._build_network(brain.n_genes).to(device).train()
        tensors = {k: v.to(device) for k, v in model._region_tensors(brain).items()}
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4, weight_decay=1e-4, foreach=True)
        forward = network.forward_per_pair if path == "per-pair" else network.forward
        batch = 512
        if batching == "random":
            batches = random_batches(len(pair_i), batch, rng)
        else:
            batches = region_block_batches(pair_i, pair_j, batch, rng)
        batches = [b for b in batches if len(b) == batch]
        distinct = []
        elapsed = 0.0
        for step in range(warmup + steps):
            positions = batches[step % len(batches)]
            it, jt = torch.as_tensor(pair_i[positions]), torch.as_tensor(pair_j[positions])
            yt = torch.as_tensor(y[positions], dtype=torch.float32)
            start = time.perf_counter()
            loss = torch.nn.functional.mse_loss(forward(tensors, it, jt), yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step >= warmup:
                elapsed += time.perf_counter() - start
                distinct.append(len(np.unique(np.concatenate([pair_i[positions], pair_j[positions]]))))
    return {
        "pairs_per_s": steps * batch / elapsed,
        "s_per_step": elapsed / steps,
        "sequences_per_step": 2 * batch if path == "per-pair" else float(np.mean(distinct)),
        "n_train": len(train),
    }


def measure(brains: list[tuple[str, Brain]], warmup: int, steps: int) -> list[str]:
    """Table rows: every path on every brain, with its throughput relative to the per-pair path."""
    configs = [("per-pair", "random"), ("per-region", "random"), ("per-region", "region_blocks")]
    rows = []
    for name, brain in brains:
        results = {}
        for path, batching in configs:
            r = time_path(brain, path, batching, warmup, steps)
            results[(path, batching)] = r
            print(
                f"{name:>22} {path:>10} {batching:>13}: {r['pairs_per_s']:9.1f} pairs/s "
                f"({r['s_per_step']:.2f} s/step, {r['sequences_per_step']:.0f} sequences/step)",
                flush=True,
            )
        base = results[("per-pair", "random")]["pairs_per_s"]
        for (path, batching), r in results.items():
            rows.append(
                f"| {name} | {brain.n_regions} ({r['n_train']}) | {brain.n_genes} | "
                f"{int(np.ceil(brain.n_genes / 60))} | {path} | {batching} | {r['sequences_per_step']:.0f} | "
                f"{r['s_per_step']:.2f} | {r['pairs_per_s']:.1f} | {r['pairs_per_s'] / base:.2f}× |"
            )
    return rows


def table(rows: list[str], args: Any) -> str:
    paper = [row for row in rows if row.startswith("| synthetic 456") and "| per-region | random |" in row]
    verdict = ""
    if paper:
        ratio = float(paper[0].split("|")[-2].strip().rstrip("×"))
        verdict = (
            f"\nGoal: per-region ≥ 3× per-pair on the paper-size case (random batches) — measured "
            f"{ratio:.2f}× ({'met' if ratio >= 3 else 'NOT met'}).\n"
        )
    return (
        f"""# SMT training throughput: per-pair vs per-region path

Generated by `benchmarks/perf/smt_throughput.py` (paper default architecture: d_model 128, 4 heads,
4 layers, k = 60, decoder [512, 256, 128], d_out 10, batch 512, dropout on; AdamW step included).
{args.warmup} warm-up step(s), then {args.steps} timed steps per row; {args.threads} torch thread(s).
{harness.machine_header()} Training regions: a random 75 %.

`sequences/step` is the number of region sequences the encoder runs per step (per-pair:
2 × 512; per-region: distinct regions of the batch, mean over timed steps).

| brain | regions (train) | genes | tokens | path | batching | sequences/step | s/step | pairs/s | vs per-pair |
|---|---|---|---|---|---|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
        + verdict
    )


def main(argv: list[str] | None = None) -> int:
    parser = harness.make_parser(__doc__)
    parser.add_argument("--dataset", default="hcp-s100", help="the real-size brain")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-paper-size", action="store_true")
    args = harness.parse_args(parser, argv, quick=QUICK)
    torch.set_num_threads(args.threads)
    brains = [(args.dataset, harness.load_brain(args.dataset))]
    if not args.skip_paper_size:
        brains.append(("synthetic 456 × 7380", make_synthetic_brain(456, 7380, seed=0)))
    rows = measure(brains, args.warmup, args.steps)
    harness.write_summary(args.out / "smt.md", table(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
