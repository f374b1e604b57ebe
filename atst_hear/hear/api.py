"""What the three HEAR modules share: option parsing, checkpoint lookup, the API functions."""

from __future__ import annotations

import os

import torch

from ..embeddings import ATSTEmbedder
from ..models.checkpoints import CheckpointError, read_encoder_weights
from ..models.encoder import ATSTConfig, ATSTEncoder

CHECKPOINT_ENV = "ATST_HEAR_CHECKPOINT"
WHERE_TO_GET = {
    "frame": (
        "ATST-Frame checkpoints (atstframe_small.ckpt / atstframe_base.ckpt) are on Google Drive: "
        "https://drive.google.com/file/d/1xZoOTuxV415icYONYbeFQzgrmJQf4a4B (small) and "
        "https://drive.google.com/file/d/1bGJSZWlAIIJ6GL5Id5dW0PTB72DL-QDQ (base)"
    ),
    "clip": (
        "ATST-Clip checkpoints are at "
        "https://checkpointstorage.oss-cn-beijing.aliyuncs.com/atst/small.ckpt and "
        "https://checkpointstorage.oss-cn-beijing.aliyuncs.com/atst/base.ckpt"
    ),
    "c2f": (
        "ATST-C2F checkpoints are produced by `atst-hear distill` from a fine-tuned ATST-Clip and "
        "a pre-trained ATST-Frame (docs/pretraining.md)"
    ),
}


def load_embedder(
    flavour: str,
    module_name: str,
    model_file_path: str | os.PathLike | None = None,
    *,
    compat: str = "default",
    n_blocks: int | None = None,
    encoder: str = "teacher",
    trust_checkpoint: bool = False,
    random_init: str | None = None,
    seed: int = 0,
    max_batch_tokens: int = 10_000,
) -> ATSTEmbedder:
    """Load an ATST encoder of ``flavour`` and wrap it for embedding (eval mode)."""
    if random_init is not None:
        if model_file_path:
            raise ValueError("give either a checkpoint path or random_init, not both")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = ATSTEncoder(ATSTConfig.preset(flavour, str(random_init)))
    else:
        model_kind = module_name.rsplit(".", 1)[-1]
        specific_env = f"{CHECKPOINT_ENV}_{model_kind.upper()}"
        path = model_file_path or os.environ.get(specific_env) or os.environ.get(CHECKPOINT_ENV)
        if not path:
            raise ValueError(
                f"{module_name}.load_model needs a checkpoint: pass its path or set "
                f"${specific_env} or ${CHECKPOINT_ENV}. {WHERE_TO_GET[model_kind]}. "
                "For an untrained model pass random_init='tiny'."
            )
        weights = read_encoder_weights(path, encoder=encoder, trust_checkpoint=trust_checkpoint)
        if weights.config.flavour != flavour:
            other = (
                "atst_hear.hear.clip"
                if weights.config.flavour == "clip"
                else "atst_hear.hear.frame"
            )
            raise CheckpointError(
                f"{path} holds an ATST-{weights.config.flavour.capitalize()} encoder, but "
                f"{module_name} expects ATST-{flavour.capitalize()}; use {other}"
            )
        model = weights.build()
    n_blocks = None if n_blocks is None else int(n_blocks)
    return ATSTEmbedder(model, compat=compat, n_blocks=n_blocks, max_batch_tokens=max_batch_tokens)


def _embedder(model) -> ATSTEmbedder:
    if not isinstance(model, ATSTEmbedder):
        raise TypeError(
            f"model must come from an atst_hear.hear module's load_model, got {type(model).__name__}"
        )
    return model


def get_scene_embeddings(audio: torch.Tensor, model: ATSTEmbedder) -> torch.Tensor:
    """``[n_sounds, n_samples]`` float audio at 16 kHz -> ``[n_sounds, scene_embedding_size]``."""
    return _embedder(model).scene_embeddings(audio)


def get_timestamp_embeddings(
    audio: torch.Tensor, model: ATSTEmbedder
) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio -> (``[n_sounds, T, timestamp_embedding_size]``, centred timestamps ``[n_sounds, T]`` ms)."""
    return _embedder(model).timestamp_embeddings(audio)
