"""``spatiomol nulls DATASET``: CGE-matched spatial nulls (Algorithm 1) to a reusable file."""

from __future__ import annotations

import argparse
import time

import numpy as np

from spatiomol.nulls.select import METHODS, MIN_MOVED


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nulls",
        help="draw spatial nulls and keep those matching the CGE-distance curve",
        description=(
            "Draw N spatial nulls of DATASET (cortical spins with Váša assignment, symmetric "
            "subcortical shuffles; or plain permutations with --method random), fit the CGE-distance "
            "curve of each, and save the TOP nulls closest to the true brain (Algorithm 1) as npz."
        ),
    )
    p.add_argument("dataset", help="bundled dataset name (see `spatiomol datasets`) or a user YAML file")
    p.add_argument("--n", type=int, default=10000, help="nulls drawn (default 10000)")
    p.add_argument("--top", type=int, default=10, help="nulls kept (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of every rotation and shuffle (default 0)")
    p.add_argument("--method", choices=METHODS, default="cge", help="null kind (default cge)")
    p.add_argument("--bin-mm", type=float, default=5.0, help="distance bin width in mm (default 5)")
    p.add_argument(
        "--pca-variance", type=float, default=0.95, help="variance kept by the PCA of --method pca-cge (default 0.95)"
    )
    p.add_argument(
        "--min-moved",
        type=float,
        default=MIN_MOVED,
        help="fraction of regions a selected null must move (default %(default)s; 0 = Algorithm 1 "
        "verbatim, which favours near-identity rotations)",
    )
    p.add_argument("--threads", type=int, default=None, help="threads of the compiled loops (default: all cores)")
    p.add_argument("--out", required=True, help="output .npz file (written atomically)")
    p.add_argument("--figure", help="also write the Fig. 3 CGE-distance figure to this PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatiomol.data.io import load_brain
    from spatiomol.nulls import generate_nulls

    brain = load_brain(args.dataset)
    start = time.perf_counter()
    nulls = generate_nulls(
        brain,
        n=args.n,
        top=args.top,
        seed=args.seed,
        method=args.method,
        bin_mm=args.bin_mm,
        pca_variance=args.pca_variance,
        min_moved=args.min_moved,
        n_jobs=args.threads,
    )
    seconds = time.perf_counter() - start
    path = nulls.save(args.out)
    meta = nulls.metadata
    print(
        f"{brain.name}: {args.n} {args.method} nulls in {seconds:.1f} s "
        f"({meta['n_unique']} distinct), kept {nulls.top} → {path}"
    )
    if meta["constant_quantities"]:
        print(f"  quantities constant across nulls (left out of the error): {', '.join(meta['constant_quantities'])}")
    true = nulls.true_parameters
    print(f"  true brain: SA_lambda {true['SA_lambda']:.2f} mm, SA_inf {true['SA_inf']:.4f}")
    print(
        f"  errors of the kept nulls: {', '.join(f'{e:.3f}' for e in nulls.errors)} "
        f"(median of all {args.n}: {float(np.median(nulls.all_errors)):.3f})"
    )
    if args.figure:
        from spatiomol.reports.cge_figure import plot_cge_curves

        print(f"  figure → {plot_cge_curves(brain, nulls, args.figure)}")
    return 0
