"""CLI: ``spatiomol run``, ``report``, ``transfer`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from spatiomol.data.sources import split_source_list
from spatiomol.evaluation.splits import SPLIT_KINDS
from spatiomol.experiments.config import ExperimentConfig, demo_config_path, load_config, split_names
from spatiomol.experiments.grid import SLICE_FIELDS
from spatiomol.experiments.runner import run_experiment, summary_text
from spatiomol.experiments.transfer import run_transfer, transfer_table
from spatiomol.nulls import NULL_DEFAULTS, NULL_METHODS


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else split_names(text)


def _datasets(text: str | None) -> list[str] | None:
    return None if text is None else split_source_list(text)


def _params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
        out[name.strip()] = yaml.safe_load(value)
    return out


def _slice(items: list[str] | None) -> dict[str, list[str]] | None:
    """``--only FIELD=V1,V2`` (repeatable) as `spatiomol.experiments.grid.select_runs` takes it."""
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        name, eq, values = item.partition("=")
        if not eq or not values.strip():
            raise ValueError(f"--only expects FIELD=VALUE[,VALUE...], got {item!r}")
        out.setdefault(name.strip(), []).extend(split_names(values))
    return out


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", help="bundled name(s), path(s) to a dataset YAML, or synthetic:k=v,... (comma-separated)"
    )
    p.add_argument("--models", help="comma-separated registry names, or 'all' / 'table1'")
    p.add_argument(
        "--splits",
        help=f"comma-separated split types among {','.join(SPLIT_KINDS)} (the last three hold out a network, "
        "a hemisphere or the subcortex; their folds are fixed by the brain)",
    )
    p.add_argument("--repeats", type=int, help="repeats of k-fold CV for random/spatial splits (paper: 10)")
    p.add_argument("--folds", type=int, help="folds per repeat for random/spatial splits (paper: 4)")
    p.add_argument("--inputs", help="comma-separated inputs: true,null,permuted")
    p.add_argument("--seed", type=int, help="root seed")
    p.add_argument(
        "--n-configs", type=int, help="hyperparameter configurations sampled per split (3-6), tried with the default"
    )
    tuning = p.add_mutually_exclusive_group()
    tuning.add_argument(
        "--tuning", dest="tuning", action="store_true", default=None, help="nested inner-CV hyperparameter selection"
    )
    tuning.add_argument("--no-tuning", dest="tuning", action="store_false", help="fit the default configuration")
    p.add_argument("--null-spins", type=int, help="nulls drawn per dataset and null family")
    p.add_argument(
        "--null-top",
        type=int,
        help="nulls kept per family, each scored on every split of the true runs (closed-form models: all "
        f"of them; neural models: the first nulls.neural_top, default {NULL_DEFAULTS['neural_top']}); the rank "
        f"verdict needs ≥ 19 (default {NULL_DEFAULTS['top']})",
    )
    p.add_argument(
        "--null-method",
        help=f"null famil(ies), comma-separated, run side by side: among {', '.join(NULL_METHODS)} "
        "(replaces the config's families; their other settings come from the config's first family)",
    )
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (joblib)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (overrides --jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    config = load_config(args.config) if getattr(args, "config", None) else ExperimentConfig()
    return config.updated(
        nulls=_null_families(
            config,
            _csv(getattr(args, "null_method", None)),
            getattr(args, "null_spins", None),
            getattr(args, "null_top", None),
        ),
        datasets=_datasets(args.dataset),
        models=_csv(args.models),
        splits=_csv(args.splits),
        repeats=args.repeats,
        folds=args.folds,
        inputs=_csv(args.inputs),
        seed=args.seed,
        n_configs=args.n_configs,
        tuning=args.tuning,
    )


def _null_families(
    config: ExperimentConfig, methods: list[str] | None, n: int | None, top: int | None = None
) -> dict[str, Any] | list[dict[str, Any]]:
    """The config's ``nulls`` with ``--null-method`` (a family each), ``--null-spins``, ``--null-top`` applied.

    The new families take their other settings from the config's first family, except
    ``cge_match``, which stays the method's default unless the config set it.
    """
    entries = [dict(e) for e in (config.nulls if isinstance(config.nulls, list) else [config.nulls])]
    if methods:
        base = entries[0]
        entries = [{**base, "method": method} for method in methods]
    for key, value in (("n", n), ("top", top)):
        if value is not None:
            for entry in entries:
                entry[key] = value
    several = isinstance(config.nulls, list) or (methods is not None and len(methods) > 1)
    return entries if several else entries[0]


def _run(config: ExperimentConfig, out: str, args: argparse.Namespace) -> int:
    summary = run_experiment(
        config,
        out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        progress=not args.no_progress,
        only=_slice(getattr(args, "only", None)),
    )
    print(summary_text(summary))
    return 1 if summary.failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    out = args.out or str(Path("runs") / config.name)
    status = _run(config, out, args)
    if args.report:
        from spatiomol.reports.report import write_report

        print(f"report: {write_report(out)}")
    return status


def cmd_report(args: argparse.Namespace) -> int:
    from spatiomol.reports.report import html_path, write_report

    options = {"n_permutations": args.permutations, "seed": args.seed}
    path = write_report(args.results, args.out, **{k: v for k, v in options.items() if v is not None})
    print(f"report: {path}")
    print(f"report (HTML): {html_path(path)}")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    pairs = [(s, t) for s in _datasets(args.source) for t in _datasets(args.target) if s != t]
    if not pairs:
        raise ValueError("--source and --target must name at least one pair of different datasets")
    shared = {"n": args.null_spins, "top": args.top, "seed": args.seed, "min_moved": args.min_moved}
    families = [{**shared, "method": method} for method in split_names(args.null_method)]
    if not families:
        raise ValueError(f"--null-method must name at least one null family among {', '.join(NULL_METHODS)}")
    try:
        frame = run_transfer(
            pairs,
            args.model,
            args.out,
            model_params=_params(args.param),
            null_index=args.null_index,
            nulls=families[0] if len(families) == 1 else families,
            seed=args.seed,
            jobs=args.jobs,
            scheduler=args.scheduler,
            progress=not args.no_progress,
        )
    except RuntimeError as err:  # failed runs: recorded under OUT/failures, the others stored
        print(f"spatiomol transfer: {err}", file=sys.stderr)
        return 1
    print(transfer_table(frame).to_string(index=False))
    print(f"results: {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from spatiomol.reports.report import write_report

    config = load_config(args.config or demo_config_path())
    t0 = time.perf_counter()
    status = _run(config, args.out, args)
    report = write_report(args.out)
    print(f"report: {report} ({time.perf_counter() - t0:.0f} s in all)")
    return status


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run an experiment grid (resumable) into a results folder")
    p.add_argument("config", nargs="?", help="experiment YAML/TOML (configs/full.yaml); flags override it")
    _add_run_flags(p)
    p.add_argument(
        "--only",
        action="append",
        metavar="FIELD=V[,V]",
        help=f"run only this slice of the grid (repeatable; fields: {', '.join(SLICE_FIELDS)}), e.g. "
        "--only repeat=1 --only model=smt-cls; the folder still records the whole grid, so slices add up to it",
    )
    p.add_argument("--out", help="results folder (default runs/<config name>)")
    p.add_argument("--report", action="store_true", help="write the report when done")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("report", help="tables (Markdown + CSV) and figures of a results folder")
    p.add_argument("results", help="results folder written by `spatiomol run`")
    p.add_argument("--out", help="output folder (default: the results folder)")
    p.add_argument(
        "--permutations", type=int, help="sign-flip permutations (exact when 2^n is fewer; default: the report's)"
    )
    p.add_argument("--seed", type=int, help="seed of the sign-flip test (default: the report's)")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("transfer", help="train on a full source dataset, predict a full target (App. A.6)")
    p.add_argument("--source", required=True, help="source dataset(s), comma-separated")
    p.add_argument("--target", required=True, help="target dataset(s), comma-separated")
    p.add_argument("--model", default="smt-cls", help="registry model name (paper: smt-cls)")
    p.add_argument("--param", action="append", help="fixed hyperparameter NAME=VALUE (repeatable)")
    p.add_argument("--null-index", type=int, default=0, help="which of the source's top nulls trains the null model")
    p.add_argument("--null-spins", type=int, default=NULL_DEFAULTS["n"], help="nulls drawn for the source's nulls")
    p.add_argument(
        "--null-method",
        default=NULL_DEFAULTS["method"],
        help=f"null famil(ies) of the source, comma-separated (one null run each): among {', '.join(NULL_METHODS)} "
        "(default %(default)s)",
    )
    p.add_argument(
        "--top", type=int, default=NULL_DEFAULTS["top"], help="nulls kept per family (--null-index picks one of them)"
    )
    p.add_argument(
        "--min-moved",
        type=float,
        default=NULL_DEFAULTS["min_moved"],
        help="fraction of regions a selected null must move (default %(default)s; 0 = Algorithm 1 verbatim)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (joblib)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (overrides --jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_transfer)

    p = subparsers.add_parser("demo", help="reduced but real hcp-s100 experiment + report (packaged demo.yaml)")
    p.add_argument("--out", default="runs/demo", help="results and report folder")
    p.add_argument("--config", help=f"demo configuration (default: the packaged {demo_config_path()})")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (joblib)")
    p.add_argument("--scheduler", help="Dask scheduler address")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


if __name__ == "__main__":  # pragma: no cover
    from spatiomol.cli.main import main

    sys.exit(main())
