"""Data subcommands: ``datasets``, ``info NAME``, ``fetch NAME``, ``validate --expression ...``."""

from __future__ import annotations

import argparse
from typing import Any

from spatiomol.data.bundled_files import dataset_entry, dataset_files, fetch, list_datasets, registry
from spatiomol.data.datasets import describe
from spatiomol.data.impute import MISSING_METHODS
from spatiomol.data.sources import SYNTHETIC_PREFIX, resolve_source
from spatiomol.data.validation import validate_files

_SCALE_WORDS = {"r": "Pearson r", "fisher_z": "Fisher-z", "raw": "raw values"}
_KIND_WORDS = {"fc": "functional connectivity", "sc": "structural connectivity"}


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def format_info(info: dict[str, Any], description: str | None = None, max_listed: int = 60) -> str:
    """Human-readable report of `spatiomol.data.datasets.describe` output."""
    lines = [f"{info['name']}" + (f": {description}" if description else "")]
    lines.append(f"  {info['regions']} regions, {info['genes']} genes")
    lines.append(f"  hemispheres: {_counts(info['hemispheres'])}")
    lines.append(f"  structures: {_counts(info['structures'])}")
    lines.append(f"  networks: {_counts(info['networks'])}")
    missing = info["expression_missing_in_source"]
    imputation = info["imputation"]
    if not missing:
        lines.append("  missing expression: 0 regions (every region has samples); 0 regions filled")
    else:
        lines.append(f"  missing expression: {len(missing)} regions without samples")
        method = imputation.get("method")
        if method == "mirror-interpolate":
            lines.append(
                f"  {len(info['filled_regions'])} regions filled by mirror-interpolate: "
                f"{imputation['n_mirror']} copied from the contralateral homologue ({imputation['homologue']}), "
                f"{imputation['n_interpolate']} by the inverse-distance-weighted (1/d, mm) mean of the "
                f"{imputation['n_neighbors']} nearest regions with data in the same hemisphere and structure class"
            )
            for label, how, sources in info["filled_regions"][:max_listed]:
                src = sources[0] if how == "mirror" else f"{len(sources)} regions: {', '.join(sources[:3])}, ..."
                lines.append(f"    {label:<44s} {how:<12s} from {src}")
        elif method == "drop":
            lines.append(
                f"  {imputation['n_missing']} regions dropped (missing='drop'): {', '.join(imputation['dropped'][:10])}"
                + (", ..." if imputation["n_missing"] > 10 else "")
            )
        else:
            lines.append(
                f"  kept as NaN rows (missing='keep'): {', '.join(missing[:10])}"
                + (", ..." if len(missing) > 10 else "")
            )
    lo, hi = info["target_range"]
    lines.append(
        f"  target: {info['target_kind']} ({_KIND_WORDS[info['target_kind']]}), scale {info['target_scale']} "
        f"({_SCALE_WORDS[info['target_scale']]}); off-diagonal values in [{lo:.4g}, {hi:.4g}], "
        f"mean {info['target_mean']:.4g}"
    )
    if info.get("target_transform"):
        lines.append(f"  target transform: {info['target_transform']}")
    lines.append(f"  subjects: {info['subjects'] if info['subjects'] is not None else 'none (group connectome only)'}")
    coords = info.get("coordinates")
    if coords:
        lines.append(f"  coordinates (cortex): {coords['cortex']}")
        lines.append(f"  coordinates (subcortex): {coords['subcortex']}")
    return "\n".join(lines)


def _cmd_datasets(args: argparse.Namespace) -> int:
    for name in list_datasets():
        print(f"{name:<14s} {dataset_entry(name)['description']}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"missing": args.missing}
    description = None
    if args.name in list_datasets():
        options["mirror"] = args.mirror
        description = dataset_entry(args.name)["description"]
    elif args.name.startswith(SYNTHETIC_PREFIX):
        options = {}
    elif options["missing"] is None:
        options.pop("missing")
    brain = resolve_source(args.name, **options)
    print(format_info(describe(brain), description))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    paths = fetch(args.name, mirror=args.mirror)
    files = registry()["files"]
    keys = dataset_files(args.name)
    for role, path in paths.items():
        print(f"{role:<16s} {path}  sha256 {files[keys[role]]['sha256']} (checked)")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    problems = validate_files(
        args.expression,
        args.connectome,
        args.regions,
        args.subjects,
        target_kind=args.target_kind,
        target_scale=args.target_scale,
        structural=args.structural,
    )
    if problems:
        print(f"{len(problems)} problem(s) found:")
        for p in problems:
            print(f"- {p}")
        return 1
    files = {"expression": args.expression, "connectome": args.connectome, "regions": args.regions}
    if args.subjects:
        files["subjects"] = args.subjects
    if args.structural:
        files["structural"] = args.structural
    brain = resolve_source(files, target_kind=args.target_kind, target_scale=args.target_scale, missing="keep")
    print("OK: no problems found")
    print(format_info(describe(brain)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the data subcommands to the ``spatiomol`` parser."""
    mirror_help = "folder holding a copy of the data files (default: $SPATIOMOL_DATA_MIRROR); hashes are checked"

    p = subparsers.add_parser("datasets", help="list the bundled datasets")
    p.set_defaults(func=_cmd_datasets)

    p = subparsers.add_parser("info", help="summary of a bundled dataset or a YAML naming your files")
    p.add_argument(
        "name", help="bundled dataset name (see `spatiomol datasets`), path to a YAML file, or synthetic:key=value,..."
    )
    p.add_argument("--mirror", default=None, help=mirror_help)
    p.add_argument(
        "--missing",
        choices=MISSING_METHODS,
        default=None,
        help="remedy for regions without expression (default: the dataset's, mirror-interpolate)",
    )
    p.set_defaults(func=_cmd_info)

    p = subparsers.add_parser(
        "fetch", help="download a bundled dataset's files into the cache by hash, or check the mirror's copies"
    )
    p.add_argument("name", help="bundled dataset name")
    p.add_argument("--mirror", default=None, help=mirror_help)
    p.set_defaults(func=_cmd_fetch)

    p = subparsers.add_parser("validate", help="check your own files and print a summary or every problem")
    p.add_argument("--expression", required=True, help="CSV: first column region label, then one column per gene")
    p.add_argument("--connectome", required=True, help="CSV or NPY: square regions × regions matrix")
    p.add_argument("--regions", required=True, help="CSV: label, hemisphere, structure, network, x, y, z (mm)")
    p.add_argument("--subjects", default=None, help="NPY: stack (n_subjects, n_regions, n_regions)")
    p.add_argument(
        "--structural", default=None, help="CSV: structural connectivity, an input modality (regions × regions)"
    )
    p.add_argument("--target-kind", choices=("fc", "sc"), default="fc")
    p.add_argument("--target-scale", choices=("r", "fisher_z", "raw"), default="r")
    p.set_defaults(func=_cmd_validate)
