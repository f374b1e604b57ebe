"""ATST for X-ARES (github.com/jimbozhang/xares): an encoder class X-ARES can load by itself.

X-ARES takes a Python file and instantiates the one class in it whose name ends in
``Encoder`` with no arguments; it needs ``sampling_rate``, ``output_dim`` and
``hop_size_in_ms`` attributes and a ``forward`` mapping ``[B, N]`` audio to ``[B, T, D]``
(``src/xares/audio_encoder_checker.py``, ``src/xares/utils.py: attr_from_py_path``). So this
module defines exactly one such class, configured by keyword arguments or, when X-ARES
constructs it bare, by environment variables::

    ATST_HEAR_XARES_MODEL=frame            # frame (default), clip or c2f
    ATST_HEAR_XARES_CHECKPOINT=atst-frame-base   # file or registered name (this default)
    ATST_HEAR_XARES_OPTIONS='{"n_blocks": 1}'     # load_model options as JSON
    python -m xares.run atst_hear/integrations/xares.py src/tasks/*.py
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from .modules import FrameEmbeddings, load_hear_model

ENV_MODEL = "ATST_HEAR_XARES_MODEL"
ENV_CHECKPOINT = "ATST_HEAR_XARES_CHECKPOINT"
ENV_OPTIONS = "ATST_HEAR_XARES_OPTIONS"
DEFAULT_CHECKPOINTS = {"frame": "atst-frame-base", "clip": "atst-clip-base"}


def _options_from_env() -> dict[str, Any]:
    text = os.environ.get(ENV_OPTIONS, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"${ENV_OPTIONS} is not valid JSON ({err}): {text!r}") from None
    if not isinstance(options, dict):
        raise ValueError(f"${ENV_OPTIONS} must be a JSON object of load_model options: {text!r}")
    return options


class ATSTXaresEncoder(FrameEmbeddings):
    """X-ARES encoder: ``forward([B, N] or [N] audio at 16 kHz) -> [B, T, output_dim]``."""

    sampling_rate = 16000

    def __init__(
        self, model: str | None = None, checkpoint: str | None = None, **options: Any
    ) -> None:
        model = model or os.environ.get(ENV_MODEL, "frame")
        checkpoint = checkpoint or os.environ.get(ENV_CHECKPOINT) or DEFAULT_CHECKPOINTS.get(model)
        options = {**_options_from_env(), **options}
        # X-ARES feeds whatever its datasets hold (and its checker feeds randn): no level check
        options.setdefault("max_amplitude", None)
        if options.get("random_init") is not None:
            checkpoint = None
        super().__init__(load_hear_model(model, checkpoint, **options))
        self.output_dim = self.embedding_dim
        self.hop_size_in_ms = self.hop_ms

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim == 1:
            audio = audio.unsqueeze(0)
        return super().forward(audio)
