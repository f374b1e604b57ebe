"""Scene and timestamp embeddings of an :class:`ATSTEncoder`.

The encoder sees at most 250 tokens (10 s) per pass, so longer audio is cut into chunks of the
normalised log-mel of the whole clip. All chunks of all clips of a batch go through the encoder
together (zero-padded, with key-padding masks), in passes of at most ``max_batch_tokens`` tokens,
under ``torch.inference_mode()``. The log-mel of each pass is computed when the pass runs
(:meth:`LogMelFrontend.stream`) and scene embeddings are reduced pass by pass, so besides the
waveform and the output memory stays flat however long the audio is.

Two modes (``compat``):

``"official"`` reproduces the official functions exactly (``atst-reference.md`` §3):
  ATST-Frame ``get_scene_embedding`` / ``get_timestamp_embedding`` of
  ``audiossl/methods/atstframe/embedding.py`` — 1001-frame chunks, equal-weight chunk mean that
  includes the zero vector of a 1–3-frame tail chunk, token-start timestamps ``40·k`` ms;
  ATST-Clip scene = the linear-evaluation vector of ``AST.get_intermediate_layers_chunks``
  (chunks of ``train_len`` s + 1 frame, ``chunk_mark`` weights, and its unclipped ``cur_len``
  that scales the token mean of non-final chunks); ATST-Clip timestamps as Frame's.

``"default"`` fixes what is wrong there: chunks on 1000-frame (250-token) boundaries so the 40 ms
  grid is continuous, timestamps at token centres ``40·k + 15`` ms and never beyond the audio,
  chunks weighted by their number of tokens (so the scene token mean is the mean over the
  whole clip), no empty tail chunk, and audio shorter than one token zero-padded to one token.

Layouts (``n`` = blocks used, ``D`` = width): timestamp ``[B, T, n·D]`` (each block after the
final norm, oldest first); scene Frame ``[B, n·D]`` (token means; with prompt tokens each block
adds the mean of its raw prompt outputs: ``[B, n·2D]``); scene Clip ``[B, 2·n·D]`` (all cls
vectors, then all token means).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .audio import MAX_AMPLITUDE, SAMPLE_RATE, check_waveform_batch
from .frontend import HOP_LENGTH, MIN_SAMPLES, N_MELS, LogMelFrontend, MelStream
from .models.encoder import ATSTEncoder
from .options import OptionError, require_choice, require_int, require_positive

COMPAT_MODES = ("default", "official")
OFFICIAL_CHUNK_FRAMES = 1001  # official: "10 seconds, consistent with the positional table"
# default mode pads audio shorter than this to exactly one 40 ms token
ONE_TOKEN_SAMPLES = 4 * HOP_LENGTH
POOL_EPS = 1e-6  # the official pooling denominators add it; kept for bit-compatibility
# the chunks of the official fine-tuning / linear-evaluation pooling (6 s + 1 and 10 s + 1 frames)
CLIP_FINETUNE_CHUNK_FRAMES = 601
FRAME_FINETUNE_CHUNK_FRAMES = 1001
# official Frame pooling leaves out chunks of at most this many frames entirely
FRAME_MIN_CHUNK = 20
# a pass holds every used block's output for each of its tokens (twice: raw and normed), so
# passes are also capped at this many output values (64 MB of fp32 per copy): with all 12 blocks
# of a base model that is 1820 tokens, already reached by 70 s of audio, so peak memory does not
# grow with the length beyond it. With one block the cap is max_batch_tokens.
MAX_PASS_VALUES = 1 << 24


@dataclass(frozen=True)
class Chunk:
    """One encoder input: mel frames ``[start, start + frames)`` of one clip of the batch."""

    clip: int
    start: int
    frames: int
    weight: float  # weight of this chunk in the clip's scene average
    pool_denominator: float  # the token sum of this chunk is divided by it
    attended_tokens: int  # key-padding mask length (patch tokens)
    token_offset: int  # position of its first token in the clip's timestamp sequence


@dataclass(frozen=True)
class ChunkPlan:
    chunks: list[Chunk]
    weight_sums: list[float]  # per clip; chunks of zero tokens can carry weight (official)
    tokens_per_clip: int


def _plan(
    n_clips: int,
    total_frames: int,
    chunk_frames: int,
    describe: Callable[[int, int, int], tuple[float, float, int] | None],
    patch_width: int,
) -> ChunkPlan:
    """Chunk every clip alike (HEAR batches hold clips of equal length).

    ``describe(index, start, frames)`` returns ``(weight, pool_denominator, attended_tokens)`` or
    ``None`` to leave the chunk out.
    """
    per_clip: list[tuple[int, int, float, float, int, int]] = []
    weight_sum, offset = 0.0, 0
    n_chunks = total_frames // chunk_frames + 1
    for index in range(n_chunks):
        start = index * chunk_frames
        frames = min(chunk_frames, total_frames - start)
        described = describe(index, start, max(frames, 0))
        if described is None:
            continue
        weight, denominator, attended = described
        weight_sum += weight
        tokens = max(frames, 0) // patch_width
        per_clip.append((start, max(frames, 0), weight, denominator, attended, offset))
        offset += tokens
    chunks = [
        Chunk(clip, start, frames, weight, denominator, attended, token_offset)
        for clip in range(n_clips)
        for (start, frames, weight, denominator, attended, token_offset) in per_clip
    ]
    return ChunkPlan(chunks, [weight_sum] * n_clips, offset)


class ATSTEmbedder(nn.Module):
    """Front-end + encoder + embedding policy: what a HEAR module's ``load_model`` returns.

    Attributes follow the HEAR API: ``sample_rate`` and plain-``int`` ``scene_embedding_size``
    and ``timestamp_embedding_size``, equal to the sizes actually returned.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        encoder: ATSTEncoder,
        compat: str = "default",
        n_blocks: int | None = None,
        max_batch_tokens: int = 10_000,
        max_amplitude: float | None = MAX_AMPLITUDE,
    ) -> None:
        super().__init__()
        config = encoder.config
        require_choice(compat, "compat", COMPAT_MODES)
        n_blocks = config.depth if n_blocks is None else require_int(n_blocks, "n_blocks")
        if not 1 <= n_blocks <= config.depth:
            raise OptionError(f"n_blocks must be in 1..{config.depth}, got {n_blocks}")
        max_batch_tokens = require_int(max_batch_tokens, "max_batch_tokens")
        if max_batch_tokens < config.max_tokens + config.n_special:
            raise OptionError(
                f"max_batch_tokens must hold at least one full chunk "
                f"({config.max_tokens + config.n_special} tokens), got {max_batch_tokens}"
            )
        self.frontend = LogMelFrontend()
        self.encoder = encoder
        self.compat = compat
        self.n_blocks = n_blocks
        self.max_batch_tokens = int(max_batch_tokens)
        if max_amplitude is not None:
            max_amplitude = require_positive(max_amplitude, "max_amplitude")
        self.max_amplitude = max_amplitude
        width = config.width
        self.timestamp_embedding_size = int(n_blocks * width)
        if config.flavour == "clip":
            self.scene_embedding_size = int(2 * n_blocks * width)
        else:
            self.scene_embedding_size = int(n_blocks * width * (2 if config.n_prompt else 1))
        self.eval()

    @property
    def config(self):
        return self.encoder.config

    @property
    def token_ms(self) -> float:
        return 1000.0 * self.config.patch_width * HOP_LENGTH / SAMPLE_RATE

    def extra_repr(self) -> str:
        return f"compat={self.compat!r}, n_blocks={self.n_blocks}"

    # --- public API -----------------------------------------------------------------------
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` audio at 16 kHz -> ``[B, scene_embedding_size]`` float32."""
        audio = self._check(audio)
        with torch.inference_mode():
            mel = self.frontend.stream(self._pad_short(audio.to(self._device)))
            device = self._device
            plan = self._scene_plan(mel.n_clips, mel.n_frames)
            total = torch.zeros(mel.n_clips, self.scene_embedding_size, device=device)

            def accumulate(chunks: list[Chunk], normed, raw) -> None:
                vectors = self._pooled(chunks, normed, raw)
                weights = torch.tensor([c.weight for c in chunks], device=device)
                clips = torch.tensor([c.clip for c in chunks], device=device)
                total.index_add_(0, clips, vectors * weights[:, None])

            self._run(mel, plan.chunks, accumulate)
            scene = total / torch.tensor(plan.weight_sums, device=device)[:, None]
        return scene.to(audio.device)

    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, N]`` audio -> (``[B, T, timestamp_embedding_size]``, timestamps ``[B, T]`` ms)."""
        audio = self._check(audio)
        n_samples = audio.shape[1]
        with torch.inference_mode():
            mel = self.frontend.stream(self._pad_short(audio.to(self._device)))
            plan = self._timestamp_plan(mel.n_clips, mel.n_frames)
            out = torch.zeros(
                mel.n_clips,
                plan.tokens_per_clip,
                self.timestamp_embedding_size,
                device=self._device,
            )
            special = self.config.n_special

            def store(chunks: list[Chunk], normed, raw) -> None:
                tokens = torch.cat(normed, dim=-1)[:, special:]
                for row, chunk in enumerate(chunks):
                    count = chunk.frames // self.config.patch_width
                    out[chunk.clip, chunk.token_offset : chunk.token_offset + count] = tokens[
                        row, :count
                    ]

            self._run(mel, plan.chunks, store)
            timestamps = self._timestamps(plan.tokens_per_clip, n_samples, mel.n_clips)
        return out.to(audio.device), timestamps.to(audio.device)

    # --- chunk plans ----------------------------------------------------------------------
    def _scene_plan(self, n_clips: int, total_frames: int) -> ChunkPlan:
        config = self.config
        patch = config.patch_width
        if self.compat == "default":
            chunk_frames = (
                self._clip_chunk_frames() - 1 if config.flavour == "clip" else self._grid_chunk()
            )
            return _plan(n_clips, total_frames, chunk_frames, self._token_weighted, patch)
        if config.flavour == "frame":
            # equal weights, and a chunk of 1-3 frames still counts (with a zero vector)
            def official_frame(index: int, start: int, frames: int):
                if frames <= 0:
                    return None
                tokens = frames // patch
                return 1.0, tokens + POOL_EPS, tokens

            return _plan(n_clips, total_frames, OFFICIAL_CHUNK_FRAMES, official_frame, patch)

        chunk_frames = self._clip_chunk_frames()

        def official_clip(index: int, start: int, frames: int):
            # cur_len is not clipped to the chunk, so non-final chunks divide their token sum by
            # the length of everything that follows them (the official quirk)
            remaining = max(total_frames - start, 0)
            counted = remaining > 0 if index == 0 else remaining > chunk_frames // 2
            if not counted:
                return None
            pooled_tokens = remaining // patch
            return 1.0, pooled_tokens + POOL_EPS, pooled_tokens

        return _plan(n_clips, total_frames, chunk_frames, official_clip, patch)

    def _timestamp_plan(self, n_clips: int, total_frames: int) -> ChunkPlan:
        chunk_frames = OFFICIAL_CHUNK_FRAMES if self.compat == "official" else self._grid_chunk()
        return _plan(
            n_clips, total_frames, chunk_frames, self._token_weighted, self.config.patch_width
        )

    def _token_weighted(self, index: int, start: int, frames: int):
        tokens = frames // self.config.patch_width
        return None if tokens == 0 else (float(tokens), float(tokens), tokens)

    def _grid_chunk(self) -> int:
        """Largest chunk on the token grid that fits the positional table (1000 frames)."""
        return self.config.max_tokens * self.config.patch_width

    def _clip_chunk_frames(self) -> int:
        """The official ATST-Clip chunk: ``train_len`` seconds plus the centred-STFT frame."""
        return int(self.config.train_len * SAMPLE_RATE / HOP_LENGTH + 1)

    # --- execution ------------------------------------------------------------------------
    @property
    def _device(self) -> torch.device:
        return self.encoder.pos_embed.device

    def _check(self, audio: torch.Tensor) -> torch.Tensor:
        check_waveform_batch(audio, max_amplitude=self.max_amplitude)
        if self.compat == "official" and audio.shape[1] < MIN_SAMPLES:
            raise ValueError(
                f"compat='official' cannot embed {audio.shape[1]} samples: the official code "
                f"needs at least {MIN_SAMPLES}; use compat='default', which pads short audio"
            )
        return audio

    def _pad_short(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.shape[1] >= MIN_SAMPLES:
            return audio
        return nn.functional.pad(audio.float(), (0, ONE_TOKEN_SAMPLES - audio.shape[1]))

    def _timestamps(self, n_tokens: int, n_samples: int, n_clips: int) -> torch.Tensor:
        steps = torch.arange(n_tokens, dtype=torch.float64)
        if self.compat == "official":
            stamps = steps * self.token_ms
        else:
            # token k covers mel frames 4k..4k+3, centred at 40k, ..., 40k+30 ms
            centre = (self.config.patch_width - 1) * 1000.0 * HOP_LENGTH / SAMPLE_RATE / 2
            stamps = (steps * self.token_ms + centre).clamp(max=1000.0 * n_samples / SAMPLE_RATE)
        return stamps.to(torch.float32).repeat(n_clips, 1).to(self._device)

    def _run(self, mel: MelStream, chunks: list[Chunk], consume) -> None:
        """Encode chunks in passes of at most ``max_batch_tokens`` tokens (padding included)
        and :data:`MAX_PASS_VALUES` block output values."""
        config = self.config
        pass_tokens = min(self.max_batch_tokens, MAX_PASS_VALUES // (self.n_blocks * config.width))
        ordered = sorted(chunks, key=lambda c: -c.frames)
        index = 0
        while index < len(ordered):
            width = max(ordered[index].frames, config.patch_width)
            per_pass = max(1, pass_tokens // (width // config.patch_width + config.n_special))
            group = ordered[index : index + per_pass]
            index += len(group)
            batch = torch.zeros(len(group), 1, N_MELS, width, device=self._device)
            # chunks at the same place in clips of equal length share one front-end call
            same_span: dict[tuple[int, int], list[int]] = {}
            for row, chunk in enumerate(group):
                same_span.setdefault((chunk.start, chunk.frames), []).append(row)
            for (start, frames), rows in same_span.items():
                if frames > 0:
                    clips = [group[row].clip for row in rows]
                    batch[rows, ..., :frames] = mel.frames(start, start + frames, clips)
            attended = torch.tensor([c.attended_tokens for c in group], device=self._device)
            # under autocast (atst-hear embed --precision bf16) only the blocks run in low
            # precision: the log-mel before them and the pooling after them stay float32
            raw = self.encoder(batch, n_blocks=self.n_blocks, token_lengths=attended)
            raw = [x.float() for x in raw]
            normed = [self.encoder.final_norm(x).float() for x in raw]
            consume(group, normed, raw)

    def _pooled(self, chunks: list[Chunk], normed: list[torch.Tensor], raw) -> torch.Tensor:
        """Scene vector of each chunk of a pass, ``[len(chunks), scene_embedding_size]``."""
        config = self.config
        special = config.n_special
        n_tokens = normed[0].shape[1] - special
        counts = torch.tensor(
            [c.frames // config.patch_width for c in chunks], device=normed[0].device
        )
        valid = (torch.arange(n_tokens, device=counts.device)[None, :] < counts[:, None]).to(
            normed[0].dtype
        )
        denominators = torch.tensor([c.pool_denominator for c in chunks], device=counts.device)
        means = [
            (x[:, special:] * valid[..., None]).sum(dim=1) / denominators[:, None] for x in normed
        ]
        if config.flavour == "clip":
            return torch.cat([x[:, 0] for x in normed] + means, dim=-1)
        if config.n_prompt:
            prompts = [x[:, :special].mean(dim=1) for x in raw]
            return torch.cat([part for pair in zip(means, prompts) for part in pair], dim=-1)
        return torch.cat(means, dim=-1)


def finetune_embedding(
    encoder: ATSTEncoder, mel: torch.Tensor, frame_lengths: torch.Tensor, compat: str = "default"
) -> torch.Tensor:
    """The fine-tuning embedding of the last block, differentiable, for padded batches.

    Frame: mean of the valid tokens' ``norm_frame`` outputs; Clip: ``[cls, token mean]``.
    Chunks of 1001 (Frame) / 601 (Clip) frames; the first chunk counts if it holds audio, a later
    one only if more than half of it does (``chunk_mark``); the counted chunks are averaged.
    """
    config = encoder.config
    clip = config.flavour == "clip"
    chunk = CLIP_FINETUNE_CHUNK_FRAMES if clip else FRAME_FINETUNE_CHUNK_FRAMES
    total, weight = None, None
    for index, start in enumerate(range(0, mel.shape[-1], chunk)):
        piece = mel[..., start : start + chunk]
        if piece.shape[-1] < config.patch_width or (
            not clip and piece.shape[-1] <= FRAME_MIN_CHUNK
        ):
            continue
        remaining = (frame_lengths - start).clamp(min=0)
        current = remaining.clamp(max=chunk)
        counted = (current > 0) if index == 0 else (current > chunk // 2)
        if not bool(counted.any()):
            continue
        x = encoder.final_norm(encoder(piece, frame_lengths=current)[-1])
        tokens = x[:, config.n_special :]
        valid = (
            torch.arange(tokens.shape[1], device=x.device)[None, :]
            < (current // config.patch_width)[:, None]
        )
        # official Clip divides by the tokens of everything from this chunk on (§3.2)
        pooled = remaining if clip and compat == "official" else current
        denominator = (pooled // config.patch_width).to(x.dtype) + POOL_EPS
        mean = (tokens * valid[..., None].to(x.dtype)).sum(dim=1) / denominator[:, None]
        vector = torch.cat([x[:, 0], mean], dim=-1) if clip else mean
        mark = counted.to(x.dtype)[:, None]
        total = vector * mark if total is None else total + vector * mark
        weight = mark if weight is None else weight + mark
    if total is None:
        raise ValueError(f"no chunk of a {mel.shape[-1]}-frame batch holds a whole token")
    return total / weight
