"""HEAR module for ATST-C2F: an ATST-Frame encoder distilled from a fine-tuned ATST-Clip.

C2F checkpoints (``encoder.encoder.frame_encoder.*`` or our distillation output) hold a Frame
encoder, possibly with prompt tokens; embeddings are computed exactly as for ATST-Frame.
"""

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
    """Load an ATST-C2F checkpoint; options as for :func:`atst_hear.hear.frame.load_model`."""
    return load_embedder("frame", __name__, model_file_path, **options)


def check_options(options: Mapping[str, Any]) -> None:
    """Check ``load_model`` options (names and types) without loading anything."""
    check_load_options(__name__, options)


__all__ = ["check_options", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
