"""torch.hub entry points: ``torch.hub.load("<owner>/atst-hear", "atst_frame")``.

Each returns the HEAR-API model of ``atst_hear.hear.frame`` / ``clip`` / ``c2f`` (eval mode),
to be used with that module's ``get_scene_embeddings`` / ``get_timestamp_embeddings``, or
called through ``model.scene_embeddings(audio)`` / ``model.timestamp_embeddings(audio)``.
``checkpoint`` is a registered name (downloaded once into the torch hub cache and verified,
``atst_hear/models/registry.py``) or a local file; the other keywords are ``load_model``
options (``compat``, ``n_blocks``, ``random_init``, ...).
"""

dependencies = ["torch", "torchaudio", "numpy", "soundfile", "safetensors", "tqdm"]


def atst_frame(checkpoint: str | None = "atst-frame-base", **options):
    """ATST-Frame (default: the official base checkpoint)."""
    from atst_hear.hear import frame

    return frame.load_model(None if options.get("random_init") else checkpoint, **options)


def atst_clip(checkpoint: str | None = "atst-clip-base", **options):
    """ATST-Clip (default: the official base checkpoint)."""
    from atst_hear.hear import clip

    return clip.load_model(None if options.get("random_init") else checkpoint, **options)


def atst_c2f(checkpoint: str, **options):
    """ATST-C2F: a file written by ``atst-hear distill`` (no official release to download)."""
    from atst_hear.hear import c2f

    return c2f.load_model(checkpoint, **options)
