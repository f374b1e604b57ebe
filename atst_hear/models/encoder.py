"""ATSTEncoder: the one transformer behind ATST-Clip, ATST-Frame and ATST-C2F.

Clip and Frame are two configurations of the same module (``ATSTConfig.flavour``):

* ``clip``  — one cls token (positional slot 0), final norm named ``norm``;
* ``frame`` — no cls token (slot 0 of the positional table unused), ``n_prompt`` prompt tokens
  without positional embedding (0 in the released models), final norm named ``norm_frame``.

Input is the normalised log-mel ``[B, 1, 64, T]``; each token is a 64×4 patch (the whole mel
axis × 40 ms), embedded by a Linear. Parameter names equal the official ones, so a state dict
of the official ``AST`` / ``FrameAST`` loads ``strict=True`` (checkpoint adapters live in
``checkpoints.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .transformer import Block, key_padding_bias

FLAVOURS = ("clip", "frame")
ARCHS = {
    # name: (width, depth, heads)
    "tiny": (192, 4, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}


@dataclass(frozen=True)
class ATSTConfig:
    """Architecture of one ATST encoder (everything needed to rebuild it, nothing else)."""

    flavour: str
    width: int = 384
    depth: int = 12
    heads: int = 6
    patch_height: int = 64
    patch_width: int = 4
    pos_len: int = 251
    n_prompt: int = 0
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    norm_eps: float = 1e-6
    drop_path: float = 0.0
    # crop length (s) the model was pre-trained on: ATST-Clip embeddings chunk audio by it
    train_len: float = 6.0

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {self.flavour!r}")
        if self.flavour == "clip" and self.n_prompt:
            raise ValueError("ATST-Clip has a cls token; prompt tokens exist only for ATST-Frame")
        for name in ("width", "depth", "heads", "patch_height", "patch_width", "pos_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by {self.heads} heads")

    @classmethod
    def preset(cls, flavour: str, arch: str, **overrides: Any) -> ATSTConfig:
        """The published sizes (small, base) and ``tiny`` (width 192, depth 4) for CPU demos."""
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
        width, depth, heads = ARCHS[arch]
        defaults = {"train_len": 6.0 if flavour == "clip" else 10.0}
        return cls(flavour, width, depth, heads, **{**defaults, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ATSTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown ATSTConfig fields {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def final_norm_name(self) -> str:
        return "norm" if self.flavour == "clip" else "norm_frame"

    @property
    def n_special(self) -> int:
        """Tokens placed before the patch tokens: the cls token or the prompt tokens."""
        return 1 if self.flavour == "clip" else self.n_prompt

    @property
    def max_tokens(self) -> int:
        """Patch tokens that fit the positional table in one pass (250 = 10 s)."""
        return self.pos_len - 1


class PatchEmbed(nn.Module):
    """Cut the mel into 64×4 patches (time-major tokens, mel-major vectors) and embed them.

    The doubled name ``patch_embed.patch_embed`` is the official parameter name.
    """

    def __init__(self, patch_height: int, patch_width: int, width: int) -> None:
        super().__init__()
        self.patch_height = patch_height
        self.patch_width = patch_width
        self.patch_embed = nn.Linear(patch_height * patch_width, width)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 4 or mel.shape[1] != 1 or mel.shape[2] != self.patch_height:
            raise ValueError(
                f"expected log-mel [B, 1, {self.patch_height}, T], got {tuple(mel.shape)}"
            )
        batch, _, height, frames = mel.shape
        n_tokens = frames // self.patch_width
        patches = mel[..., : n_tokens * self.patch_width].reshape(
            batch, height, n_tokens, self.patch_width
        )
        patches = patches.permute(0, 2, 1, 3).reshape(batch, n_tokens, height * self.patch_width)
        return self.patch_embed(patches)


class ATSTEncoder(nn.Module):
    def __init__(self, config: ATSTConfig) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.patch_embed = PatchEmbed(config.patch_height, config.patch_width, width)
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, width))
        if config.flavour == "clip":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        if config.n_prompt:
            self.prompt_embed = nn.Parameter(torch.zeros(1, config.n_prompt, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pos_len, width))
        drop_rates = torch.linspace(0, config.drop_path, config.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(width, config.heads, config.mlp_ratio, config.qkv_bias, rate, config.norm_eps)
            for rate in drop_rates
        )
        self.add_module(config.final_norm_name, nn.LayerNorm(width, eps=config.norm_eps))
        self.reset_parameters()

    @property
    def final_norm(self) -> nn.LayerNorm:
        return getattr(self, self.config.final_norm_name)

    def reset_parameters(self) -> None:
        """The official initialisation: truncated normal (std 0.02), zero biases, unit norms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for name in ("pos_embed", "mask_embed", "cls_token", "prompt_embed"):
            if hasattr(self, name):
                nn.init.trunc_normal_(getattr(self, name), std=0.02)

    def token_lengths(self, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Valid patch tokens for valid mel frames (a partial patch is dropped)."""
        return torch.div(frame_lengths, self.config.patch_width, rounding_mode="floor")

    def forward(
        self,
        mel: torch.Tensor,
        frame_lengths: torch.Tensor | None = None,
        n_blocks: int = 1,
        token_mask: torch.Tensor | None = None,
        token_lengths: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Raw outputs (before the final norm) of the last ``n_blocks`` blocks, oldest first.

        Each is ``[B, n_special + P, D]`` with the cls / prompt tokens first. Keys beyond the
        valid length of each example (``token_lengths``, or ``frame_lengths // 4``) are masked
        as the official code does; queries are not. ``token_mask`` (bool ``[B, P]``) replaces
        those patch embeddings by ``mask_embed`` before the positional embedding (pre-training).
        """
        config = self.config
        if not 1 <= n_blocks <= config.depth:
            raise ValueError(f"n_blocks must be in 1..{config.depth}, got {n_blocks}")
        x = self.patch_embed(mel)
        batch, n_tokens, _ = x.shape
        if n_tokens > config.max_tokens:
            raise ValueError(
                f"{n_tokens} tokens exceed the positional table of {config.max_tokens} tokens "
                f"({config.max_tokens * config.patch_width} frames); split the input into chunks"
            )
        if token_mask is not None:
            x = torch.where(token_mask[..., None], self.mask_embed.to(x.dtype), x)
        x = x + self.pos_embed[:, 1 : n_tokens + 1]
        if config.flavour == "clip":
            specials = self.cls_token + self.pos_embed[:, :1]
        elif config.n_prompt:
            specials = self.prompt_embed
        else:
            specials = None
        if specials is not None:
            x = torch.cat([specials.expand(batch, -1, -1).to(x.dtype), x], dim=1)

        if token_lengths is None and frame_lengths is not None:
            token_lengths = self.token_lengths(frame_lengths)
        bias = None
        if token_lengths is not None and bool((token_lengths < n_tokens).any()):
            bias = key_padding_bias(token_lengths + config.n_special, x.shape[1], x.dtype)

        outputs = []
        first_kept = config.depth - n_blocks
        for index, block in enumerate(self.blocks):
            x = block(x, bias)
            if index >= first_kept:
                outputs.append(x)
        return outputs


def layer_decay_groups(
    model: nn.Module, encoder: ATSTEncoder, decay: float
) -> list[dict[str, Any]]:
    """Trainable parameters of ``model`` in groups with the ATST papers' layer-wise ``lr_scale``.

    Inside ``encoder``: patch / positional / mask / cls / prompt embeddings ``decay**depth``,
    block ``i`` ``decay**(depth - i)``, the final norm ``decay``; every other parameter of
    ``model`` (the heads) 1.
    """
    depth = encoder.config.depth
    scale_of = {}
    for name, parameter in encoder.named_parameters():
        if name.startswith("blocks."):
            scale_of[id(parameter)] = decay ** (depth - int(name.split(".")[1]))
        elif name.startswith(f"{encoder.config.final_norm_name}."):
            scale_of[id(parameter)] = decay
        else:
            scale_of[id(parameter)] = decay**depth
    groups: dict[float, list[nn.Parameter]] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            groups.setdefault(scale_of.get(id(parameter), 1.0), []).append(parameter)
    return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]
