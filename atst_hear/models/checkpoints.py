"""Reading the official ATST checkpoints unchanged, and our safetensors export.

Adapters live here so the model knows nothing of archive layouts. Supported layouts
(``atst-reference.md`` §2.8):

* ATST-Frame / ATST-Clip Lightning pre-training archives: ``state_dict['model.teacher.encoder.*']``
  (and ``model.student.encoder.*``), ``hyper_parameters``;
* ATST-Clip DINO-style (released ``base.ckpt``): ``ckpt['teacher']['module.backbone.*']``,
  ``args`` (an ``argparse.Namespace``);
* fine-tuned downstream modules: ``encoder.encoder.*``;
* C2F / ATST-SED: ``encoder.encoder.frame_encoder.*`` (a final norm stored as ``norm`` is the
  Frame ``norm_frame``; a stray ``cls_token`` is dropped);
* a bare encoder state dict, and ``.safetensors`` written by :func:`save_safetensors`.

The architecture is inferred from tensor shapes, never from ``hyper_parameters['arch']``.
Archives are unpickled with ``weights_only=True`` and an allow-list of harmless globals; anything
else is refused unless the caller passes ``trust_checkpoint=True``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..options import require_bool
from .encoder import ATSTConfig, ATSTEncoder

SAFETENSORS_FORMAT = "atst-hear-encoder"
ENCODER_ROLES = ("teacher", "student")


class CheckpointError(ValueError):
    """A file that is not a usable ATST checkpoint; the message names it and says why."""


class UnsafeCheckpointError(CheckpointError):
    """The archive needs a global outside the allow-list to be unpickled."""


class _AttributeDict(dict):
    """Stands in for Lightning's ``AttributeDict`` so hyper-parameters load without Lightning."""


def _allowed_globals() -> list[Any]:
    """Globals that official archives contain and that cannot run code when unpickled."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: list[Any] = [
        argparse.Namespace,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        pathlib.PurePosixPath,
        np.dtype,
        np.ndarray,
    ]
    allowed += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]
    # numpy 2 pickles these under numpy._core, numpy 1 under numpy.core
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        for name in ("scalar", "_reconstruct"):
            allowed.append((getattr(multiarray, name), f"{module}.{name}"))
    for name in (
        "pytorch_lightning.utilities.parsing.AttributeDict",
        "lightning.pytorch.utilities.parsing.AttributeDict",
        "lightning.fabric.utilities.data.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
    ):
        allowed.append((_AttributeDict, name))
    return allowed


def load_archive(path: str | os.PathLike, trust_checkpoint: bool = False) -> Any:
    """Unpickle a ``torch.save`` archive safely (or fully, with ``trust_checkpoint=True``)."""
    trust_checkpoint = require_bool(trust_checkpoint, "trust_checkpoint")
    path = _existing_file(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    if not trust_checkpoint and not hasattr(torch.serialization, "safe_globals"):
        raise CheckpointError(
            f"{path}: safe loading needs torch >= 2.5 (found {torch.__version__}); upgrade torch, "
            "or pass trust_checkpoint=True (--trust-checkpoint) if you trust this file"
        )
    try:
        if trust_checkpoint:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if re.search(r"GLOBAL [\w.]+", str(err)):
            offending = ", ".join(_disallowed_globals(path, str(err)))
            raise UnsafeCheckpointError(
                f"{path}: refusing to unpickle {offending}: not on the allow-list of harmless "
                "checkpoint contents (unpickling such objects can execute code). If you trust "
                "this file, load it with trust_checkpoint=True (CLI: --trust-checkpoint)."
            ) from None
        raise _unreadable(path, err) from None
    except Exception as err:  # a corrupt archive can fail anywhere inside torch's unpickler
        raise _unreadable(path, err) from None


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file does not exist")
    return path


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """The error for a file torch cannot load, without torch's advice to turn safety off."""
    message = str(err)
    # torch's weights-only message wraps the real reason in advice to retry unsafely
    inner = re.search(
        r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", message, re.S
    )
    reason = inner.group(1).strip() if inner else message.strip().splitlines()[0] if message else ""
    return CheckpointError(
        f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {reason}); expected "
        "an ATST .ckpt archive written by torch.save or a .safetensors export"
    )


def _disallowed_globals(path: Path, message: str) -> list[str]:
    """Fully qualified names of every global in the archive outside the allow-list."""
    allowed = {
        entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
        for entry in _allowed_globals()
    }
    lister = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    names = [name for name in (lister(path) if lister else []) if name not in allowed]
    return names or re.findall(r"GLOBAL ([\w.]+)", message)


@dataclass
class EncoderWeights:
    """An encoder state dict with official key names, and where it came from."""

    config: ATSTConfig
    state_dict: dict[str, torch.Tensor]
    layout: str
    source: str
    hyper_parameters: dict[str, Any] = field(default_factory=dict)

    def build(self) -> ATSTEncoder:
        encoder = ATSTEncoder(self.config)
        expected = encoder.state_dict()
        for key, value in self.state_dict.items():
            if key in expected and value.shape != expected[key].shape:
                raise CheckpointError(
                    f"{self.source}: tensor {key!r} has shape {tuple(value.shape)}, but the "
                    f"architecture inferred from the file ({self.config}) expects "
                    f"{tuple(expected[key].shape)}"
                )
        result = encoder.load_state_dict(self.state_dict, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{self.source}: encoder weights do not fit the inferred architecture "
                f"{self.config}: missing {result.missing_keys[:8]}, "
                f"unexpected {result.unexpected_keys[:8]}"
            )
        return encoder.eval()


# (layout name, how to find the encoder dict in the archive, key prefix); checked in order
def _lightning_prefixes(role: str) -> list[tuple[str, str]]:
    return [
        ("lightning-pretrain", f"model.{role}.encoder."),
        ("c2f", "encoder.encoder.frame_encoder."),
        ("finetuned", "encoder.encoder."),
        ("distilled", "encoder."),
    ]


def extract_encoder_weights(archive: Any, source: str, encoder: str = "teacher") -> EncoderWeights:
    """Find the encoder inside any supported archive layout and infer its configuration."""
    if encoder not in ENCODER_ROLES:
        raise CheckpointError(f"encoder must be one of {ENCODER_ROLES}, got {encoder!r}")
    if not isinstance(archive, Mapping):
        raise CheckpointError(
            f"{source}: expected a checkpoint dictionary, got {type(archive).__name__}"
        )
    hyper: dict[str, Any] = {}
    candidates: list[tuple[str, Mapping[str, Any], str]] = []
    if "state_dict" in archive and isinstance(archive["state_dict"], Mapping):
        hyper = dict(archive.get("hyper_parameters") or {})
        for layout, prefix in _lightning_prefixes(encoder):
            candidates.append((layout, archive["state_dict"], prefix))
    elif "teacher" in archive and "args" in archive:
        args = archive["args"]
        hyper = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args or {})
        if not isinstance(archive.get(encoder), Mapping):
            raise CheckpointError(f"{source}: DINO-style archive has no {encoder!r} weights")
        candidates.append(("dino", archive[encoder], "module.backbone."))
    else:
        for prefix in ("", "module.backbone.", "backbone.", "module.", "encoder."):
            candidates.append(("state-dict", archive, prefix))

    for layout, tensors, prefix in candidates:
        if f"{prefix}pos_embed" not in tensors:
            continue
        if encoder == "student" and layout not in ("lightning-pretrain", "dino"):
            raise CheckpointError(
                f"{source}: a {layout} checkpoint holds a single encoder; "
                "encoder='student' exists only in pre-training archives"
            )
        state = {
            key[len(prefix) :]: value
            for key, value in tensors.items()
            if key.startswith(prefix) and isinstance(value, torch.Tensor)
        }
        state = _drop_heads(state)
        if layout == "c2f":
            state = _as_frame(state)
        config = infer_config(state, hyper, source)
        _check_finite(state, source)
        return EncoderWeights(config, state, layout, source, hyper)

    keys = list(archive.get("state_dict", archive).keys())[:10]
    raise CheckpointError(
        f"{source}: no ATST encoder found (looked for 'pos_embed' under the prefixes "
        f"{sorted({prefix for _, _, prefix in candidates})}); the file's keys start with {keys}. "
        "Is this an ATST-Clip / ATST-Frame checkpoint?"
    )


def _drop_heads(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep encoder tensors only (projectors, predictors, classifier heads are not ours)."""
    top_level = ("mask_embed", "pos_embed", "cls_token", "prompt_embed")
    modules = ("patch_embed.", "blocks.", "norm.", "norm_frame.")
    return {k: v for k, v in state.items() if k in top_level or k.startswith(modules)}


def _as_frame(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """C2F / ATST-SED encoders are Frame models even where their final norm is called ``norm``."""
    renamed = {}
    for key, value in state.items():
        if key == "cls_token":
            continue
        if key.startswith("norm."):
            key = "norm_frame." + key[len("norm.") :]
        renamed[key] = value
    return renamed


def infer_config(
    state: Mapping[str, torch.Tensor], hyper: Mapping[str, Any], source: str
) -> ATSTConfig:
    """Rebuild ``ATSTConfig`` from tensor shapes (the checkpoint's ``arch`` field can lie)."""

    def need(key: str) -> torch.Tensor:
        if key not in state:
            raise CheckpointError(f"{source}: encoder weights lack {key!r}")
        return state[key]

    pos = need("pos_embed")
    if pos.ndim != 3 or pos.shape[0] != 1:
        raise CheckpointError(
            f"{source}: pos_embed has shape {tuple(pos.shape)}, expected [1, N, D]"
        )
    width, pos_len = int(pos.shape[2]), int(pos.shape[1])
    block_ids = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    if not block_ids or block_ids != set(range(len(block_ids))):
        raise CheckpointError(f"{source}: transformer blocks missing or not numbered 0..N-1")
    patch_in = int(need("patch_embed.patch_embed.weight").shape[1])
    patch_height = int(hyper.get("n_mels", hyper.get("patch_height", 64)))
    if patch_in % patch_height:
        raise CheckpointError(
            f"{source}: patch embedding takes {patch_in} values, not a multiple of {patch_height} mels"
        )
    if "norm_frame.weight" in state:
        flavour = "frame"
    elif "norm.weight" in state and "cls_token" in state:
        flavour = "clip"
    else:
        raise CheckpointError(
            f"{source}: cannot tell ATST-Clip (cls_token + norm) from ATST-Frame (norm_frame)"
        )
    n_prompt = int(state["prompt_embed"].shape[1]) if "prompt_embed" in state else 0
    heads = int(hyper.get("num_heads", width // 64))
    mlp_hidden = int(need("blocks.0.mlp.fc1.weight").shape[0])
    train_len = _train_len(hyper, flavour)
    try:
        return ATSTConfig(
            flavour=flavour,
            width=width,
            depth=len(block_ids),
            heads=heads,
            patch_height=patch_height,
            patch_width=patch_in // patch_height,
            pos_len=pos_len,
            n_prompt=n_prompt,
            mlp_ratio=mlp_hidden / width,
            qkv_bias="blocks.0.attn.qkv.bias" in state,
            train_len=train_len,
        )
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None


def _train_len(hyper: Mapping[str, Any], flavour: str) -> float:
    if flavour == "frame":
        return float(hyper.get("anchor_len", 10.0))
    if "train_len" in hyper:
        return float(hyper["train_len"])
    anchor = hyper.get("anchor_len")
    if isinstance(anchor, list | tuple) and anchor:
        return float(anchor[0])
    return 6.0  # the official loader's default for archives older than the train_len field


def read_encoder_weights(
    path: str | os.PathLike, encoder: str = "teacher", trust_checkpoint: bool = False
) -> EncoderWeights:
    trust_checkpoint = require_bool(trust_checkpoint, "trust_checkpoint")
    path = Path(path)
    if path.suffix == ".safetensors":
        _existing_file(path)
        if encoder != "teacher":
            raise CheckpointError(f"{path}: a safetensors export holds only the exported encoder")
        return _read_safetensors(path)
    archive = load_archive(path, trust_checkpoint)
    return extract_encoder_weights(archive, str(path), encoder)


def load_encoder(
    path: str | os.PathLike, encoder: str = "teacher", trust_checkpoint: bool = False
) -> ATSTEncoder:
    """Build the encoder of an official checkpoint (or our export), in eval mode."""
    return read_encoder_weights(path, encoder, trust_checkpoint).build()


def save_safetensors(weights: EncoderWeights, path: str | os.PathLike) -> None:
    """Write encoder weights + JSON config: loadable without pickle, by us or any safetensors reader."""
    from safetensors.torch import save_file

    from ..fileio import atomic_output

    metadata = {
        "format": SAFETENSORS_FORMAT,
        "atst_config": json.dumps(weights.config.to_dict()),
        "source_layout": weights.layout,
        "source": os.path.basename(weights.source),
    }
    tensors = {k: v.detach().contiguous() for k, v in weights.state_dict.items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _read_safetensors(path: Path) -> EncoderWeights:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != SAFETENSORS_FORMAT or "atst_config" not in metadata:
        config = infer_config(state, {}, str(path))
    else:
        config = ATSTConfig.from_dict(json.loads(metadata["atst_config"]))
    _check_finite(state, str(path))
    return EncoderWeights(config, state, "safetensors", str(path))


def _check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or Inf: they would give NaN embeddings without a word."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                f"{source}: tensor {key!r} holds {bad} NaN/Inf values of {value.numel()}; "
                "expected finite weights (the file is corrupt or training diverged)"
            )
