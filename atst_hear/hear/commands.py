"""``atst-hear embed`` and ``atst-hear convert``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

MODELS = ("frame", "clip", "c2f")


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed audio files (any sample rate) with ATST-Frame / ATST-Clip / ATST-C2F",
        description="Writes <stem>.npy per input file: [D] for --kind scene, [T, D] plus "
        "<stem>.timestamps.npy (ms) for --kind timestamp. Existing outputs are kept "
        "(re-running resumes) unless --overwrite.",
    )
    embed.add_argument("files", nargs="+", type=Path, metavar="FILE")
    embed.add_argument("--model", choices=MODELS, required=True)
    embed.add_argument("--checkpoint", help="official .ckpt or .safetensors export")
    embed.add_argument("--out", type=Path, required=True, help="output folder")
    embed.add_argument("--kind", choices=("scene", "timestamp"), default="scene")
    embed.add_argument("--compat", choices=("default", "official"), default="default")
    embed.add_argument("--n-blocks", type=int, help="use the last N blocks (default: all)")
    embed.add_argument("--encoder", choices=("teacher", "student"), default="teacher")
    embed.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    embed.add_argument("--overwrite", action="store_true")
    _add_trust_flag(embed)
    embed.set_defaults(run=run_embed)

    convert = subparsers.add_parser(
        "convert",
        help="export the encoder of an official checkpoint to safetensors (weights + config)",
    )
    convert.add_argument("checkpoint", type=Path, metavar="CKPT")
    convert.add_argument("output", type=Path, metavar="OUT.safetensors")
    convert.add_argument("--encoder", choices=("teacher", "student"), default="teacher")
    _add_trust_flag(convert)
    convert.set_defaults(run=run_convert)


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle the checkpoint without the safety allow-list (only for files you trust)",
    )


def _output_stems(files: list[Path]) -> list[str]:
    """File stems, made unique with parent folder names where two inputs share a stem."""
    stems = [f.stem for f in files]
    duplicates = {s for s in stems if stems.count(s) > 1}
    if not duplicates:
        return stems
    return [
        "__".join(f.with_suffix("").parts[-2:]) if f.stem in duplicates else f.stem for f in files
    ]


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from ..audio import read_audio
    from ..fileio import atomic_output

    module = importlib.import_module(f"atst_hear.hear.{args.model}")
    model = module.load_model(
        args.checkpoint,
        compat=args.compat,
        n_blocks=args.n_blocks,
        encoder=args.encoder,
        trust_checkpoint=args.trust_checkpoint,
    ).to(args.device)
    args.out.mkdir(parents=True, exist_ok=True)

    def save(path: Path, array: torch.Tensor) -> None:
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array.cpu().numpy())

    done = 0
    for file, stem in tqdm(
        list(zip(args.files, _output_stems(args.files))),
        desc=f"embedding ({args.kind})",
        unit="file",
    ):
        target = args.out / f"{stem}.npy"
        if target.exists() and not args.overwrite:
            continue
        audio = read_audio(file).to(args.device)[None]
        if args.kind == "scene":
            save(target, module.get_scene_embeddings(audio, model)[0])
        else:
            embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
            save(args.out / f"{stem}.timestamps.npy", timestamps[0])
            save(target, embeddings[0])
        done += 1
    print(f"wrote {done} embeddings to {args.out} ({len(args.files) - done} already present)")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from ..models.checkpoints import read_encoder_weights, save_safetensors

    if args.output.suffix != ".safetensors":
        raise ValueError(f"output {args.output} must end in .safetensors")
    weights = read_encoder_weights(args.checkpoint, args.encoder, args.trust_checkpoint)
    save_safetensors(weights, args.output)
    config = weights.config
    print(
        f"wrote {args.output}: ATST-{config.flavour.capitalize()} {args.encoder} encoder "
        f"(width {config.width}, depth {config.depth}, {len(weights.state_dict)} tensors, "
        f"from a {weights.layout} archive)"
    )
    return 0
