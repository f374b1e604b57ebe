"""ATST for EVAR (github.com/nttcslab/eval-audio-repr): an ``AR_*`` audio-representation class.

EVAR builds a representation as ``eval('evar.' + cfg.audio_repr)(cfg)``, moves it to the
device, calls ``precompute(device, train_loader)`` once and then ``forward(batch)`` on
``[B, N]`` audio, expecting ``[B, cfg.feature_d]`` (``lineareval.py``, ``evar/ar_base.py``).
``encode_frames`` returns ``[B, D, T]`` as ``evar/ar_base.py`` defines it. To plug this class
in, add ``evar/ar_atst_hear.py`` holding ``from atst_hear.integrations.evar import AR_ATST_HEAR``
(and import it in EVAR's ``lineareval.py`` beside the other ``evar.ar_*`` imports) and a config
(docs/interop.md)::

    audio_repr: ar_atst_hear.AR_ATST_HEAR
    weight_file: atst-frame-base    # a file or a registered name
    model: frame                    # frame, clip or c2f
    n_blocks: 12
    feature_d: 9216                 # checked against what the model returns
    sample_rate: 16000
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .modules import load_hear_model

# cfg keys passed on to load_model when present (EVAR's own keys are ignored)
_OPTION_KEYS = ("compat", "n_blocks", "encoder", "trust_checkpoint", "max_batch_tokens")


class AR_ATST_HEAR(nn.Module):  # noqa: N801 (EVAR's naming convention)
    """EVAR representation: scene embeddings for ``forward``, frame embeddings for
    ``encode_frames``; ``cfg`` is EVAR's config (any mapping; attribute access not needed).

    Frozen (``torch.inference_mode``): for EVAR's linear evaluation (``lineareval.py``), not
    its fine-tuning (``finetune.py``), which trains the representation's own layers.
    """

    def __init__(self, cfg: Mapping[str, Any], filename_mode: bool = False) -> None:
        super().__init__()
        if filename_mode:
            raise ValueError("AR_ATST_HEAR takes audio tensors, not file names")
        self.cfg = dict(cfg)
        sample_rate = int(self.cfg.get("sample_rate", 16000))
        if sample_rate != 16000:
            raise ValueError(f"ATST models take 16 kHz audio; the config has {sample_rate}")
        options = {k: self.cfg[k] for k in _OPTION_KEYS if self.cfg.get(k) is not None}
        options["max_amplitude"] = None  # EVAR normalises its own audio
        weight_file = self.cfg.get("weight_file")
        if self.cfg.get("random_init"):
            options.update(random_init=self.cfg["random_init"], seed=int(self.cfg.get("seed", 0)))
            weight_file = None
        self.embedder = load_hear_model(self.cfg.get("model", "frame"), weight_file, **options)
        feature_d = self.cfg.get("feature_d")
        if feature_d is not None and int(feature_d) != self.embedder.scene_embedding_size:
            raise ValueError(
                f"cfg feature_d is {feature_d}, but this model's scene embeddings have "
                f"{self.embedder.scene_embedding_size} dimensions; set feature_d to that"
            )
        self.feature_d = self.embedder.scene_embedding_size

    def precompute(self, device, data_loader) -> None:
        """Nothing to precompute: the ATST front-end scales its log-mel by fixed constants."""

    def encode_frames(self, batch_audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` -> ``[B, D, T]`` frame embeddings (40 ms hop)."""
        embeddings, _ = self.embedder.timestamp_embeddings(batch_audio)
        return embeddings.transpose(1, 2)

    def forward(self, batch_audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` -> ``[B, feature_d]`` scene embeddings."""
        return self.embedder.scene_embeddings(batch_audio)
