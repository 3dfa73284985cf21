"""CLI: ``spatiomol explain RESULTS --model smt-cls [--split random:r0f0]``."""

from __future__ import annotations

import argparse


def cmd_explain(args: argparse.Namespace) -> int:
    from spatiomol.explain import explain_run

    result = explain_run(
        args.results,
        args.model,
        args.split,
        args.out,
        method=args.method,
        n_steps=args.steps,
        max_edges=args.max_edges,
        seed=args.seed,
        refit=args.refit,
    )
    print(
        f"{result.model} {result.split} (run {result.run_id}): {result.source}; "
        f"max |prediction − stored| = {result.max_prediction_difference:.3g}"
    )
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    return 0


def register(subparsers) -> None:
    from spatiomol.explain.defaults import MAX_EDGES, METHODS, N_STEPS

    p = subparsers.add_parser(
        "explain",
        help="region embeddings, SMT attention along the genome and gene attributions of one run's model",
    )
    p.add_argument("results", help="results folder (spatiomol run)")
    p.add_argument("--model", required=True, help="neural registry model, e.g. mlp, mlp-coords, smt, smt-cls")
    p.add_argument("--split", default=None, help="<random|spatial>:r<repeat>f<fold> (default: the model's first)")
    p.add_argument("--out", default=None, help="output folder (default RESULTS/explain/<model>_<split>)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0], help="gene attribution method")
    p.add_argument("--steps", type=int, default=N_STEPS, help="integrated-gradients steps")
    p.add_argument("--max-edges", type=int, default=MAX_EDGES, help="edges explained at most (seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the edge sample")
    p.add_argument("--refit", action="store_true", help="refit even when the grid saved the run's model")
    p.set_defaults(func=cmd_explain)
