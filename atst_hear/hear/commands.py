"""``atst-hear embed`` and ``atst-hear convert``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..argtypes import non_negative_int, positive_int

MODELS = ("frame", "clip", "c2f")
# the sizes of models.encoder.ARCHS, spelled out so that building the CLI does not import torch
RANDOM_INIT_SIZES = ("base", "small", "tiny")
PRECISIONS = ("32", "bf16")


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed audio files (any sample rate) with ATST-Frame / ATST-Clip / ATST-C2F",
        description="Writes <stem>.npy per input file: [D] for --kind scene, [T, D] plus "
        "<stem>.timestamps.npy (ms) for --kind timestamp. Clips of equal length go through the "
        "encoder together (--batch-size at a time), so batching never pads and never changes "
        "an embedding. Existing outputs are kept (re-running resumes) unless --overwrite.",
    )
    embed.add_argument("files", nargs="+", type=Path, metavar="FILE")
    embed.add_argument("--model", choices=MODELS, required=True)
    source = embed.add_mutually_exclusive_group()
    source.add_argument(
        "--checkpoint",
        help="official .ckpt, .safetensors export, or a registered name (e.g. atst-frame-base: "
        "downloaded once into the torch hub cache and verified)",
    )
    source.add_argument(
        "--random-init",
        choices=RANDOM_INIT_SIZES,
        help="an untrained model of this size instead of a checkpoint (with --seed)",
    )
    embed.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    embed.add_argument(
        "--checkpoint-sha256", help="refuse the checkpoint unless its sha256 is this one"
    )
    embed.add_argument("--out", type=Path, required=True, help="output folder")
    embed.add_argument("--kind", choices=("scene", "timestamp"), default="scene")
    embed.add_argument("--compat", choices=("default", "official"), default="default")
    embed.add_argument("--n-blocks", type=int, help="use the last N blocks (default: all)")
    embed.add_argument("--encoder", choices=("teacher", "student"), default="teacher")
    embed.add_argument(
        "--device",
        default="auto",
        help="torch device; auto (default, as for bench) is cuda when available, else cpu",
    )
    embed.add_argument(
        "--batch-size",
        type=positive_int,
        default=16,
        help="clips of equal length per encoder call (default 16)",
    )
    embed.add_argument(
        "--workers",
        type=non_negative_int,
        default=min(4, (os.cpu_count() or 1) - 1),
        help="processes decoding and resampling audio while the encoder runs (0: decode in "
        "this process; default min(4, CPUs - 1))",
    )
    embed.add_argument(
        "--devices",
        type=positive_int,
        help="processes per node, one device each (Lightning; each takes every N-th batch, "
        "results identical to one process); under torchrun/srun give what they started",
    )
    embed.add_argument(
        "--num-nodes", type=positive_int, default=1, help="nodes of a --devices run (default 1)"
    )
    embed.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="32",
        help="32 (default): float32 throughout; bf16: the encoder blocks under bfloat16 "
        "autocast (log-mel, pooling and the written arrays stay float32; docs/cluster.md)",
    )
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


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; any other name is used as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def precision_context(precision: str, device: str) -> contextlib.AbstractContextManager:
    """What the encoder runs under for ``--precision``: nothing for 32, bf16 autocast else."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


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


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of equal length (at most ``batch_size`` each), longest first.

    Only equal lengths share a batch: the HEAR API takes ``[n_sounds, n_samples]``, and padding
    a shorter clip would change its embedding.
    """
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        by_length.setdefault(length, []).append(index)
    return [
        members[start : start + batch_size]
        for _, members in sorted(by_length.items(), reverse=True)
        for start in range(0, len(members), batch_size)
    ]


def _decoded_length(path: Path) -> int:
    """Samples at 16 kHz that decoding ``path`` yields, from the header (nothing is decoded)."""
    import soundfile as sf

    from ..audio import SAMPLE_RATE, AudioError

    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several unrelated types for unreadable files
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    if info.samplerate == SAMPLE_RATE:
        return int(info.frames)
    # torchaudio's resample returns ceil(frames * new / old) samples
    return -(-int(info.frames) * SAMPLE_RATE // int(info.samplerate))


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from ..fileio import atomic_output

    module = importlib.import_module(f"atst_hear.hear.{args.model}")
    options = {
        "compat": args.compat,
        "n_blocks": args.n_blocks,
        "encoder": args.encoder,
        "trust_checkpoint": args.trust_checkpoint,
    }
    if args.random_init is not None:
        options.update(random_init=args.random_init, seed=args.seed)
    if args.checkpoint_sha256 is not None:
        options["checkpoint_sha256"] = args.checkpoint_sha256
    device = resolve_device(args.device)
    ranks = None
    if args.devices is not None or args.num_nodes > 1:
        from .distributed import start_ranks

        ranks = start_ranks(args.devices or 1, args.num_nodes, device)
        device = ranks.device
    model = module.load_model(args.checkpoint, **options).to(device)
    precision = precision_context(args.precision, device)
    args.out.mkdir(parents=True, exist_ok=True)

    jobs = [
        (file, stem)
        for file, stem in zip(args.files, _output_stems(args.files))
        if args.overwrite or not (args.out / f"{stem}.npy").exists()
    ]
    batches = length_batches([_decoded_length(file) for file, _ in jobs], args.batch_size)
    if ranks is not None:
        # every rank lists the same clips before any writes one, then takes every N-th batch
        # (the same batches as one process: a clip's batch mates never change its embedding)
        ranks.barrier()
        batches = batches[ranks.rank :: ranks.world_size]

    def save(path: Path, array: torch.Tensor) -> None:
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array.cpu().numpy())

    def embed(batch: list[int], waves: list[torch.Tensor]) -> None:
        lengths = {len(wave) for wave in waves}
        if len(lengths) > 1:  # a header that promised another length than decoding gave
            for length in lengths:
                group = [i for i, wave in zip(batch, waves) if len(wave) == length]
                embed(group, [wave for wave in waves if len(wave) == length])
            return
        audio = torch.stack(waves).to(device)
        if args.kind == "scene":
            with precision:
                scenes = module.get_scene_embeddings(audio, model)
            for index, row in zip(batch, scenes):
                save(args.out / f"{jobs[index][1]}.npy", row)
        else:
            with precision:
                embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
            for index, rows, times in zip(batch, embeddings, timestamps):
                # timestamps first: the .npy is what marks a file as done
                save(args.out / f"{jobs[index][1]}.timestamps.npy", times)
                save(args.out / f"{jobs[index][1]}.npy", rows)

    with (
        _decoder(args.workers) as decode,
        tqdm(total=sum(map(len, batches)), desc=f"embedding ({args.kind})", unit="file") as bar,
    ):
        # decoding of the next batch runs in the workers while the encoder works on this one
        pending = decode([jobs[i][0] for i in batches[0]]) if batches else None
        for position, batch in enumerate(batches):
            waves = [future.result() for future in pending]
            if position + 1 < len(batches):
                pending = decode([jobs[i][0] for i in batches[position + 1]])
            embed(batch, waves)
            bar.update(len(batch))
    if ranks is not None:
        ranks.barrier()
        if ranks.rank != 0:
            return 0
    print(
        f"wrote {len(jobs)} embeddings to {args.out} ({len(args.files) - len(jobs)} already "
        "present)"
    )
    return 0


class _Done:
    """A finished computation with the interface of a ``concurrent.futures.Future``."""

    def __init__(self, value) -> None:
        self._value = value

    def result(self):
        return self._value


@contextlib.contextmanager
def _decoder(workers: int) -> Iterator[Callable[[list[Path]], list]]:
    """A function that starts decoding files and returns one future per file."""
    from ..audio import read_audio

    if workers == 0:
        yield lambda files: [_Done(read_audio(file)) for file in files]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a forked child would inherit torch's thread pools (and CUDA state) mid-use
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield lambda files: [pool.submit(read_audio, file) for file in files]


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
