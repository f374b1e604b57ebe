"""The ``atst-hear`` command.

Each sub-command lives beside the code it drives and registers itself through a
``register(subparsers)`` function; this module only lists them, so importing the CLI stays cheap
and a sub-command's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path of each sub-command provider, in the order shown by --help
COMMAND_MODULES = (
    "atst_hear.hear.commands",
    "atst_hear.bench.commands",
    "atst_hear.bench.prepare.commands",
    "atst_hear.bench.demo.commands",
    "atst_hear.pretrain.commands",
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="atst-hear",
        description="ATST-Clip / ATST-Frame / ATST-C2F: embeddings, pre-training and benchmarks",
    )
    parser.add_argument("--version", action="version", version=f"atst-hear {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # user-facing errors carry their own explanation; tracebacks are for bugs
        print(f"atst-hear {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
