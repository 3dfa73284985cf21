"""`spatiomol` command line: a thin layer over the library.

Each stage contributes its subcommands from its own module (``register(subparsers)``),
so the CLI grows with the package without one file owning every command.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

#: modules under spatiomol.cli that define ``register(subparsers)``
COMMAND_MODULES = ["data_commands", "run_commands", "nulls_commands", "explain_commands"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatiomol",
        description="Predict connectivity from gene expression and position, against spatiomolecular nulls.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads for this process (default: torch's own choice). The library never changes "
        "process-wide thread settings; on a busy or shared machine, 1 is usually fastest for serial runs",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        import_module(f"spatiomol.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be a positive integer, got {args.threads}")
        import torch  # only here: the application, not the library, owns the process's thread setting

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as err:  # user-facing errors: no traceback
        print(f"spatiomol {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
