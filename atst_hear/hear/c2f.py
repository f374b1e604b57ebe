"""HEAR module for ATST-C2F: an ATST-Frame encoder distilled from a fine-tuned ATST-Clip.

C2F checkpoints (``encoder.encoder.frame_encoder.*`` or our distillation output) hold a Frame
encoder, possibly with prompt tokens; embeddings are computed exactly as for ATST-Frame.
"""

from __future__ import annotations

from .api import get_scene_embeddings, get_timestamp_embeddings, module_entry_points

load_model, check_options = module_entry_points(
    "frame",
    __name__,
    "Load an ATST-C2F checkpoint (a Frame encoder; any official layout or our export).",
)

__all__ = ["check_options", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
