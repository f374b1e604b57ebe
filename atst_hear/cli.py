"""The ``atst-hear`` command.

Each sub-command lives beside the code it drives and registers itself through a
``register(subparsers)`` function; this module only lists them, so importing the CLI stays cheap
and a sub-command's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# module path of each sub-command provider, in the order shown by --help
COMMAND_MODULES = (
    "atst_hear.hear.commands",
    "atst_hear.bench.commands",
    "atst_hear.bench.prepare.commands",
    "atst_hear.bench.demo.commands",
    "atst_hear.pretrain.commands",
)

# top-level module -> the setup.cfg extra that installs it, for a clear "install ..." error
EXTRAS = {
    **dict.fromkeys(
        ("sklearn", "pandas", "scipy", "sed_eval", "psds_eval", "sed_scores_eval", "dcase_util"),
        "bench",
    ),
    **dict.fromkeys(("matplotlib", "yaml", "pkg_resources"), "bench"),
    **dict.fromkeys(("lightning", "tensorboard"), "train"),
}


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
    except ModuleNotFoundError as err:
        extra = EXTRAS.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"atst-hear {args.command}: error: this command needs {err.name}, which comes with "
            f"an extra: pip install 'atst-hear[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except (ValueError, RuntimeError) as err:
        # user-facing errors carry their own explanation; tracebacks are for bugs
        print(f"atst-hear {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # missing or unwritable paths, a full disk, a file where a folder goes
        print(f"atst-hear {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 2


def describe_os_error(err: OSError) -> str:
    """``PATH: reason`` for a file-system error, with what was expected where Python is terse."""
    if err.filename is None:
        return str(err)
    reason = err.strerror or str(err)
    if isinstance(err, FileExistsError | NotADirectoryError) and os.path.isfile(err.filename):
        reason += " (expected a folder, found a file)"
    elif isinstance(err, PermissionError):
        reason += " (expected a path this user may write)"
    return f"{err.filename}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
