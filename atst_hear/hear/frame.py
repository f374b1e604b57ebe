"""HEAR module for ATST-Frame: ``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .api import (
    check_load_options,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_embedder,
)


def load_model(model_file_path: str | os.PathLike | None = None, **options):
    """Load an ATST-Frame checkpoint (any official layout or our safetensors export).

    Options: ``compat`` ("default" | "official"), ``n_blocks``, ``encoder`` ("teacher" |
    "student"), ``trust_checkpoint``, ``random_init`` ("tiny" | "small" | "base") with ``seed``,
    ``max_batch_tokens``, ``max_amplitude`` (peak |sample| accepted, default 2.0; None: any).
    """
    return load_embedder("frame", __name__, model_file_path, **options)


def check_options(options: Mapping[str, Any]) -> None:
    """Check ``load_model`` options (names and types) without loading anything."""
    check_load_options(__name__, options)


__all__ = ["check_options", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
