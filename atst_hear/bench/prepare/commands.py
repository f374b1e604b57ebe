"""``atst-hear prepare NAME RAW_DIR OUT_DIR``: convert a public dataset into a HEAR task folder."""

from __future__ import annotations

import argparse
import os

from . import DATASETS


def register(subparsers: argparse._SubParsersAction) -> None:
    lines = []
    for name, entry in DATASETS.items():
        lines.append(f"  {name:10s} {entry.title}")
        if entry.variants:
            others = ", ".join(entry.variants[1:])
            lines.append(f"  {'':10s} --variant {entry.variants[0]} (default), {others}")
    datasets = "\n".join(lines)
    parser = subparsers.add_parser(
        "prepare",
        help="convert a public dataset into a HEAR task folder (16 kHz WAV, splits, labels)",
        description=(
            "Convert a dataset, laid out as its owners distribute it, into a HEAR task folder "
            "with a manifest. An interrupted run resumes where it stopped; see "
            "docs/datasets.md for downloads and layouts.\n\ndatasets:\n" + datasets
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=list(DATASETS), metavar="NAME", help="dataset (see above)")
    parser.add_argument("raw_dir", metavar="RAW_DIR", help="the extracted dataset")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="task folder to create")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="worker processes that decode and resample (default: all cores)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip missing, corrupt or wrongly labelled files (listed in the manifest) "
        "instead of stopping at the first one",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="convert a dataset whose clip or class counts differ from the known release "
        "(a subset); the difference is recorded in the manifest",
    )
    parser.add_argument("--variant", help="dataset variant (see above)")
    parser.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from .core import prepare

    prepare(
        args.name,
        args.raw_dir,
        args.out_dir,
        jobs=args.jobs,
        skip_bad=args.skip_bad,
        allow_partial=args.allow_partial,
        variant=args.variant,
    )
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
