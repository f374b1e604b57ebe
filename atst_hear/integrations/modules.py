"""A plain ``torch.nn.Module`` over an ATST HEAR model: audio in, frame embeddings out."""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch
from torch import nn

from ..embeddings import ATSTEmbedder

MODELS = ("frame", "clip", "c2f")


def load_hear_model(
    model: str = "frame", checkpoint: str | os.PathLike | None = None, **options: Any
) -> ATSTEmbedder:
    """``atst_hear.hear.<model>.load_model(checkpoint, **options)``, with the model checked."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    return importlib.import_module(f"atst_hear.hear.{model}").load_model(checkpoint, **options)


class FrameEmbeddings(nn.Module):
    """``[B, N]`` float audio at 16 kHz -> ``[B, T, D]`` frame embeddings, one every 40 ms.

    The embeddings are the HEAR timestamp embeddings of the wrapped model (same options, same
    numbers), computed frozen (``torch.inference_mode``): a feature extractor, not a layer to
    fine-tune. ``timestamps(n_samples)`` gives the centre of each frame in ms.
    """

    sample_rate = 16000

    def __init__(self, embedder: ATSTEmbedder) -> None:
        super().__init__()
        if not isinstance(embedder, ATSTEmbedder):
            raise TypeError(
                "FrameEmbeddings wraps what an atst_hear.hear module's load_model returns, got "
                f"{type(embedder).__name__}"
            )
        self.embedder = embedder
        self.embedding_dim = int(embedder.timestamp_embedding_size)
        self.hop_ms = float(embedder.token_ms)

    @classmethod
    def from_pretrained(
        cls, checkpoint: str | os.PathLike | None = None, model: str = "frame", **options: Any
    ) -> FrameEmbeddings:
        """``checkpoint``: a file, a registered name (``atst-frame-base``) or None for the
        ``$ATST_HEAR_CHECKPOINT_*`` variables; ``options``: ``load_model`` options."""
        return cls(load_hear_model(model, checkpoint, **options))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        embeddings, _ = self.embedder.timestamp_embeddings(audio)
        return embeddings

    def timestamps(self, n_samples: int) -> torch.Tensor:
        """Centres (ms) of the ``T`` frames that ``forward`` returns for ``n_samples`` of audio."""
        silence = torch.zeros(1, int(n_samples), device=self._device())
        _, times = self.embedder.timestamp_embeddings(silence)
        return times[0]

    def _device(self) -> torch.device:
        return next(self.embedder.parameters()).device
