"""``atst-hear prepare NAME RAW_DIR OUT_DIR``: convert a public dataset into a HEAR task folder."""

from __future__ import annotations

import argparse
import os

from ...argtypes import fraction, positive_int
from . import DATASETS

PRETRAINING_SUFFIX = "-pretraining"


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
        type=positive_int,
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
    parser.add_argument(
        "--variant", "--subset", help="dataset variant (see above; AudioSet calls it --subset)"
    )
    parser.add_argument(
        "--for-pretraining",
        action="store_true",
        help=f"write tar shards for `atst-hear pretrain --data` instead of a task folder "
        f"(variants ending in {PRETRAINING_SUFFIX}; --subset picks the clips)",
    )
    parser.add_argument(
        "--min-found",
        type=fraction,
        metavar="FRACTION",
        help="AudioSet: stop when a split has less than this fraction of its listed clips on "
        "disk (default: never; absent clips are listed in the manifest)",
    )
    parser.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from .core import prepare

    variant = args.variant
    if args.for_pretraining:
        variant = _pretraining_variant(args.name, variant)
    prepare(
        args.name,
        args.raw_dir,
        args.out_dir,
        jobs=args.jobs,
        skip_bad=args.skip_bad,
        allow_partial=args.allow_partial,
        variant=variant,
        options={} if args.min_found is None else {"min_found": args.min_found},
    )
    return 0


def _pretraining_variant(name: str, subset: str | None) -> str:
    """``--for-pretraining --subset X``: the variant ``X-pretraining`` (default: the first)."""
    offered = [v for v in DATASETS[name].variants if v.endswith(PRETRAINING_SUFFIX)]
    if not offered:
        raise ValueError(f"{name} has no pre-training output (--for-pretraining)")
    if subset is None:
        return offered[0]
    if subset.endswith(PRETRAINING_SUFFIX):
        return subset
    variant = subset + PRETRAINING_SUFFIX
    if variant not in offered:
        choices = ", ".join(v[: -len(PRETRAINING_SUFFIX)] for v in offered)
        raise ValueError(f"{name} --for-pretraining: --subset {subset!r} is not one of {choices}")
    return variant
