"""What the three HEAR modules share: option parsing, checkpoint lookup, the API functions."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..audio import MAX_AMPLITUDE
from ..embeddings import COMPAT_MODES, ATSTEmbedder
from ..models.checkpoints import ENCODER_ROLES, CheckpointError, read_encoder_weights
from ..models.encoder import ARCHS, ATSTConfig, ATSTEncoder
from ..models.registry import resolve as resolve_checkpoint
from ..options import OptionError, require_bool, require_choice, require_int, require_positive

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


# load_model options of the ATST modules and their defaults (the README lists them)
LOAD_OPTIONS: dict[str, Any] = {
    "compat": "default",
    "n_blocks": None,
    "encoder": "teacher",
    "trust_checkpoint": False,
    "random_init": None,
    "seed": 0,
    "max_batch_tokens": 10_000,
    "max_amplitude": MAX_AMPLITUDE,
    "checkpoint_sha256": None,
}


def check_load_options(module_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``load_model`` option checked for name and type, defaults filled in.

    Strict on purpose: options come from JSON and YAML, where ``"false"`` or ``"10000"`` are
    easy to write and would otherwise be truthy or crash deep inside torch.
    """
    where = f"{module_name}.load_model"
    unknown = sorted(set(options) - set(LOAD_OPTIONS))
    if unknown:
        raise OptionError(f"{where}: unknown options {unknown}; known: {sorted(LOAD_OPTIONS)}")
    values = {**LOAD_OPTIONS, **options}
    require_choice(values["compat"], f"{where}: compat", COMPAT_MODES)
    require_choice(values["encoder"], f"{where}: encoder", ENCODER_ROLES)
    require_bool(values["trust_checkpoint"], f"{where}: trust_checkpoint")
    if values["n_blocks"] is not None:
        require_int(values["n_blocks"], f"{where}: n_blocks", minimum=1)
    if values["random_init"] is not None:
        require_choice(values["random_init"], f"{where}: random_init", sorted(ARCHS))
    require_int(values["seed"], f"{where}: seed")
    require_int(values["max_batch_tokens"], f"{where}: max_batch_tokens", minimum=1)
    if values["max_amplitude"] is not None:
        require_positive(values["max_amplitude"], f"{where}: max_amplitude")
    digest = values["checkpoint_sha256"]
    if digest is not None and not (
        isinstance(digest, str) and re.fullmatch(r"[0-9a-fA-F]{64}", digest)
    ):
        raise OptionError(
            f"{where}: checkpoint_sha256 must be 64 hexadecimal digits, got {digest!r}"
        )
    return values


def load_embedder(
    flavour: str,
    module_name: str,
    model_file_path: str | os.PathLike | None = None,
    **options: Any,
) -> ATSTEmbedder:
    """Load an ATST encoder of ``flavour`` and wrap it for embedding (eval mode).

    ``options`` are those of :data:`LOAD_OPTIONS`, checked by :func:`check_load_options`.
    """
    values = check_load_options(module_name, options)
    random_init = values["random_init"]
    if random_init is not None:
        if model_file_path:
            raise ValueError("give either a checkpoint path or random_init, not both")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(values["seed"])
            model = ATSTEncoder(ATSTConfig.preset(flavour, random_init))
    else:
        model_kind = module_name.rsplit(".", 1)[-1]
        specific_env = f"{CHECKPOINT_ENV}_{model_kind.upper()}"
        path = model_file_path or os.environ.get(specific_env) or os.environ.get(CHECKPOINT_ENV)
        if not path:
            raise ValueError(
                f"{module_name}.load_model needs a checkpoint: pass its path or set "
                f"${specific_env} or ${CHECKPOINT_ENV}, or a name from "
                f"atst_hear.models.registry (e.g. atst-frame-base). {WHERE_TO_GET[model_kind]}. "
                "For an untrained model pass random_init='tiny'."
            )
        # a registered name (atst_hear.models.registry) is downloaded once and verified
        path, registered = resolve_checkpoint(path, sha256=values["checkpoint_sha256"])
        weights = read_encoder_weights(
            path, encoder=values["encoder"], trust_checkpoint=values["trust_checkpoint"]
        )
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
        if registered is not None:
            registered.check_config(weights.config)
        model = weights.build()
    return ATSTEmbedder(
        model,
        compat=values["compat"],
        n_blocks=values["n_blocks"],
        max_batch_tokens=values["max_batch_tokens"],
        max_amplitude=values["max_amplitude"],
    )


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


LOAD_MODEL_OPTIONS_DOC = """Options: ``compat`` ("default" | "official"), ``n_blocks``, ``encoder`` ("teacher" |
    "student"), ``trust_checkpoint``, ``random_init`` ("tiny" | "small" | "base") with ``seed``,
    ``max_batch_tokens``, ``max_amplitude`` (peak |sample| accepted, default 2.0; None: any),
    ``checkpoint_sha256``."""


def module_entry_points(
    flavour: str, module_name: str, summary: str
) -> tuple[Callable[..., ATSTEmbedder], Callable[[Mapping[str, Any]], None]]:
    """``load_model`` and ``check_options`` of the HEAR module ``module_name``.

    The HEAR modules differ only in the encoder flavour and the name their errors give, so they
    take these two functions from here instead of writing them out each.
    """

    def load_model(model_file_path: str | os.PathLike | None = None, **options: Any):
        return load_embedder(flavour, module_name, model_file_path, **options)

    def check_options(options: Mapping[str, Any]) -> None:
        check_load_options(module_name, options)

    load_model.__doc__ = f"{summary}\n\n    {LOAD_MODEL_OPTIONS_DOC}\n    "
    check_options.__doc__ = (
        "Check ``load_model`` options (names and types) without loading anything."
    )
    for function in (load_model, check_options):
        function.__module__ = module_name
        function.__qualname__ = function.__name__
    return load_model, check_options
