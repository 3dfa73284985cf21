"""``spatiomol nulls DATASET``: spatial nulls of one family (optionally CGE-matched) to a reusable file."""

from __future__ import annotations

import argparse
import time

import numpy as np

from spatiomol.nulls.defaults import NULL_DEFAULTS, NULL_TUNING_DEFAULTS, SUBCORTEX_DEFAULT
from spatiomol.nulls.select import NULL_METHODS, SUBCORTEX_NULLS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nulls",
        help="draw spatial nulls of one family and keep the best (CGE-matched) or the first",
        description=(
            "Draw N spatial nulls of DATASET with one family (--method: cortical spins with Váša or "
            "Hungarian assignment, Moran spectral randomisation, variogram-matched surrogates, or plain "
            "permutations), fit the CGE-distance curve of each, and save TOP of them as npz: those closest "
            "to the true brain (Algorithm 1, --cge-match) or the first TOP draws (--no-cge-match)."
        ),
    )
    p.add_argument(
        "dataset", help="bundled dataset name (see `spatiomol datasets`), a user YAML file, or synthetic:key=value,..."
    )
    p.add_argument("--n", type=int, default=NULL_DEFAULTS["n"], help="nulls drawn (default %(default)s)")
    p.add_argument("--top", type=int, default=NULL_DEFAULTS["top"], help="nulls kept (default %(default)s)")
    p.add_argument(
        "--seed", type=int, default=NULL_DEFAULTS["seed"], help="seed of every random draw (default %(default)s)"
    )
    p.add_argument(
        "--method", choices=NULL_METHODS, default=NULL_DEFAULTS["method"], help="null family (default %(default)s)"
    )
    p.add_argument(
        "--cge-match",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="select the nulls matching the true CGE-distance curve (Algorithm 1); default: the family's "
        "(on for cge and pca-cge, off for the others)",
    )
    p.add_argument(
        "--subcortex",
        choices=SUBCORTEX_NULLS,
        default=SUBCORTEX_DEFAULT,
        help="non-cortical null of the spin families (default %(default)s)",
    )
    p.add_argument(
        "--bin-mm",
        type=float,
        default=NULL_TUNING_DEFAULTS["bin_mm"],
        help="distance bin width in mm (default %(default)s)",
    )
    p.add_argument(
        "--pca-variance",
        type=float,
        default=NULL_TUNING_DEFAULTS["pca_variance"],
        help="variance kept by the PCA of --method pca-cge and variogram (default %(default)s)",
    )
    p.add_argument(
        "--min-moved",
        type=float,
        default=NULL_DEFAULTS["min_moved"],
        help="fraction of regions a selected null must move (default %(default)s; 0 = Algorithm 1 "
        "verbatim, which favours near-identity rotations)",
    )
    p.add_argument("--threads", type=int, default=None, help="threads of the compiled loops (default: all cores)")
    p.add_argument("--out", required=True, help="output .npz file (written atomically)")
    p.add_argument("--figure", help="also write the Fig. 3 CGE-distance figure to this PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatiomol.data.sources import resolve_source
    from spatiomol.nulls import generate_nulls

    brain = resolve_source(args.dataset)
    start = time.perf_counter()
    nulls = generate_nulls(
        brain,
        n=args.n,
        top=args.top,
        seed=args.seed,
        method=args.method,
        cge_match=args.cge_match,
        subcortex=args.subcortex,
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
        f"({meta['n_unique']} distinct), kept {nulls.top} ({'CGE-matched' if meta['cge_match'] else 'first draws'}) "
        f"→ {path}"
    )
    if meta["constant_quantities"]:
        print(f"  quantities constant across nulls (left out of the error): {', '.join(meta['constant_quantities'])}")
    true = nulls.true_parameters
    print(f"  true brain: SA_lambda {true['SA_lambda']:.2f} mm, SA_inf {true['SA_inf']:.4f}")
    print(
        f"  errors of the kept nulls: {', '.join(f'{e:.3f}' for e in nulls.errors)} "
        f"(median of the {meta['n_scored']} scored: {float(np.median(nulls.all_errors)):.3f})"
    )
    if args.figure and not nulls.is_permutation:
        print("  figure skipped: the CGE-distance figure draws permutation nulls only")
    elif args.figure:
        from spatiomol.reports.cge_figure import plot_cge_curves

        print(f"  figure → {plot_cge_curves(brain, nulls, args.figure)}")
    return 0
