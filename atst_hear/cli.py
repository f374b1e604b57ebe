"""The ``atst-hear`` command.

Each sub-command lives beside the code it drives and registers itself through a
``register(subparsers)`` function; this module only lists them, so importing the CLI stays cheap
and a sub-command's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator

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

# progress and status messages of the library go to stderr; results of a command go to stdout
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_DATE_FORMAT = "%H:%M:%S"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="atst-hear",
        description="ATST-Clip / ATST-Frame / ATST-C2F: embeddings, pre-training and benchmarks",
    )
    parser.add_argument("--version", action="version", version=f"atst-hear {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    # own dests: a sub-command's --quiet (no progress bars) must not overwrite these
    verbosity.add_argument(
        "-q", "--quiet", dest="log_quiet", action="store_true", help="log warnings and errors only"
    )
    verbosity.add_argument(
        "-v", "--verbose", dest="log_verbose", action="store_true", help="log debug messages too"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with command_logging(args):
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
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


def log_level(args: argparse.Namespace) -> int:
    """The level the flags ask for; a sub-command's ``--quiet`` (no progress bars) also quiets
    the progress messages."""
    if args.log_verbose:
        return logging.DEBUG
    if args.log_quiet or getattr(args, "quiet", False):
        return logging.WARNING
    return logging.INFO


@contextlib.contextmanager
def command_logging(args: argparse.Namespace) -> Iterator[None]:
    """Send the package's log records to stderr while one command runs.

    The handler goes on the ``atst_hear`` logger, not the root one, and both are put back
    afterwards, so that a program calling :func:`main` (or pytest) keeps its own logging set-up.
    """
    package_logger = logging.getLogger("atst_hear")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(log_level(args))
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


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
