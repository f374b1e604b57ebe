"""HEAR module for ATST-Frame: ``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``."""

from __future__ import annotations

from .api import get_scene_embeddings, get_timestamp_embeddings, module_entry_points

load_model, check_options = module_entry_points(
    "frame",
    __name__,
    "Load an ATST-Frame checkpoint (any official layout or our safetensors export).",
)

__all__ = ["check_options", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
