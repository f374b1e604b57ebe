"""Embedding speed: atst-hear against a straightforward re-implementation of the official code.

Base-size ATST-Frame with random weights, 2 clips x 30 s, fp32, CPU. The reference works the way
``audiossl/methods/atstframe/embedding.py`` does: one 1001-frame chunk at a time, explicit
attention (``softmax(q k^T * scale + mask) v``, the mask rebuilt in every block), a separate
encoder run for the scene and for the timestamp embeddings. atst-hear (default mode) batches
every chunk of every clip into one pass with ``scaled_dot_product_attention``.

Prints: parity of our ``compat="official"`` mode with the reference (must be <= 1e-4), seconds
per call for each implementation, the speed ratio, the achieved GFLOP/s and the machine's fp32
matmul GFLOP/s (the ceiling). Run: ``make bench-embed`` or ``python benchmarks/bench_embed.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from atst_hear import __version__
from atst_hear.embeddings import ATSTEmbedder
from atst_hear.frontend import LogMelFrontend
from atst_hear.models import ATSTConfig, ATSTEncoder

CHUNK = 1001


def reference_layers(state, config, mel, n_blocks):
    """Official ``FrameAST.get_intermediate_layers`` for one chunk, with explicit attention."""
    width, heads = config.width, config.heads
    batch, _, _, frames = mel.shape
    tokens = frames // 4
    patches = mel[..., : tokens * 4].reshape(batch, 64, tokens, 4).permute(0, 2, 1, 3)
    x = F.linear(
        patches.reshape(batch, tokens, 256),
        state["patch_embed.patch_embed.weight"],
        state["patch_embed.patch_embed.bias"],
    )
    x = x + state["pos_embed"][:, 1 : tokens + 1]
    length = torch.full((batch,), tokens)
    outputs = []
    for index in range(config.depth):
        p = f"blocks.{index}."
        mask = torch.arange(tokens)[None, :] >= length[:, None]
        mask = (-10000.0 * mask[:, None, None, :]).expand(batch, 1, tokens, tokens)
        h = F.layer_norm(x, (width,), state[p + "norm1.weight"], state[p + "norm1.bias"], 1e-6)
        qkv = F.linear(h, state[p + "attn.qkv.weight"])
        qkv = qkv.reshape(batch, tokens, 3, heads, width // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (width // heads) ** -0.5
        attn = (attn + mask).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(batch, tokens, width)
        x = x + F.linear(y, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (width,), state[p + "norm2.weight"], state[p + "norm2.bias"], 1e-6)
        h = F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
        if index >= config.depth - n_blocks:
            outputs.append(
                F.layer_norm(
                    x, (width,), state["norm_frame.weight"], state["norm_frame.bias"], 1e-6
                )
            )
    return outputs


def reference_embeddings(state, config, audio):
    """Official scene and timestamp embeddings: a chunk loop per call, two encoder runs."""
    mel = LogMelFrontend()(audio)
    total = mel.shape[-1]
    scenes, stamps = [], []
    for start in range(0, total, CHUNK):
        chunk = mel[..., start : start + CHUNK]
        layers = reference_layers(state, config, chunk, config.depth)
        scenes.append(torch.cat([x.sum(1) / (x.shape[1] + 1e-6) for x in layers], dim=-1))
    scene = torch.stack(scenes).mean(0)
    for start in range(0, total, CHUNK):
        chunk = mel[..., start : start + CHUNK]
        stamps.append(torch.cat(reference_layers(state, config, chunk, config.depth), dim=-1))
    return scene, torch.cat(stamps, dim=1)


def encoder_flops(config, tokens_per_pass: list[int]) -> float:
    """Multiply-adds x 2 of the encoder for passes of the given token counts."""
    d = config.width
    per_block = sum(24 * d * d * n + 4 * n * n * d for n in tokens_per_pass)
    return float(per_block * config.depth)


def matmul_gflops(size: int = 1536, repeats: int = 20) -> float:
    """Best fp32 GEMM rate of this machine (best of many runs, so background load matters less)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_of(lambda: a @ b, repeats) / 1e9


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="base", choices=["tiny", "small", "base"])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = ATSTConfig.preset("frame", args.arch)
    encoder = ATSTEncoder(config).eval()
    state = {k: v.detach() for k, v in encoder.state_dict().items()}
    audio = torch.rand(args.clips, int(args.seconds * 16000)) * 2 - 1
    ours = ATSTEmbedder(encoder)
    official = ATSTEmbedder(encoder, compat="official")

    with torch.inference_mode():
        ref_scene, ref_stamps = reference_embeddings(state, config, audio)
    parity = max(
        float((official.scene_embeddings(audio) - ref_scene).abs().max()),
        float((official.timestamp_embeddings(audio)[0] - ref_stamps).abs().max()),
    )

    def run_ours():
        ours.scene_embeddings(audio)
        ours.timestamp_embeddings(audio)

    def run_reference():
        with torch.inference_mode():
            reference_embeddings(state, config, audio)

    run_ours()
    # interleaved runs, best of each: background load hits both sides alike
    ours_times, reference_times = [], []
    for _ in range(args.repeats):
        ours_times.append(best_of(run_ours, 1))
        reference_times.append(best_of(run_reference, 1))
    ours_s, reference_s = min(ours_times), min(reference_times)
    frames = 1 + audio.shape[1] // 160
    tokens = [min(250, (frames - s) // 4) for s in range(0, frames, 1000) if (frames - s) >= 4]
    flops = 2 * encoder_flops(config, tokens) * args.clips  # scene + timestamp calls
    ceiling = max(matmul_gflops(), matmul_gflops(size=768 * 4))
    figures = {
        "toolkit_version": __version__,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "model": f"ATST-Frame {args.arch} (random weights), fp32",
        "audio": f"{args.clips} clips x {args.seconds:g} s",
        "official_mode_max_abs_diff": parity,
        "atst_hear_s": round(ours_s, 3),
        "reference_s": round(reference_s, 3),
        "speedup": round(reference_s / ours_s, 2),
        "atst_hear_gflops": round(flops / ours_s / 1e9, 1),
        "matmul_gflops": round(ceiling, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    for key, value in figures.items():
        print(f"{key:28s} {value}")
    if parity > 1e-4:
        raise SystemExit(f"official-mode outputs differ from the reference by {parity:.2e} > 1e-4")
    if args.json:
        from atst_hear.fileio import write_json_atomic

        write_json_atomic(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
