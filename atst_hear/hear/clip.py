"""HEAR module for ATST-Clip: ``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``."""

from __future__ import annotations

import os

from .api import get_scene_embeddings, get_timestamp_embeddings, load_embedder


def load_model(model_file_path: str | os.PathLike | None = None, **options):
    """Load an ATST-Clip checkpoint (any official layout or our safetensors export).

    Options: ``compat`` ("default" | "official"), ``n_blocks``, ``encoder`` ("teacher" |
    "student"), ``trust_checkpoint``, ``random_init`` ("tiny" | "small" | "base") with ``seed``,
    ``max_batch_tokens``.
    """
    return load_embedder("clip", __name__, model_file_path, **options)


__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
