"""Block masks of ATST-Frame pre-training (``atst-reference.md`` §4.3).

The official code calls fairseq's ``compute_mask_indices`` with ``mask_type="static"``,
``mask_prob=0.65``, ``mask_length=5``, ``min_masks=2`` and overlapping spans allowed, once per
clip: ``int(0.65·P/5 + U(0, 1))`` span starts are drawn without replacement from
``range(P - 5)`` and each masks 5 consecutive tokens. Because spans overlap, only about 50 % of
the tokens end up masked (not 65 %). This is the same procedure, batched in torch.
"""

from __future__ import annotations

import torch


def span_mask(
    batch: int,
    n_tokens: int,
    mask_prob: float = 0.65,
    span: int = 5,
    min_spans: int = 2,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bool ``[batch, n_tokens]``, True where a token is masked; one independent mask per row."""
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    if span < 1:
        raise ValueError(f"mask span must be at least 1 token, got {span}")
    device = torch.device(device) if device is not None else None
    mask = torch.zeros(batch, n_tokens + span, dtype=torch.bool, device=device)
    if n_tokens < 1 or batch < 1:
        return mask[:, :n_tokens]
    jitter = torch.rand(batch, generator=generator, device=device)
    n_spans = (mask_prob * n_tokens / span + jitter).floor().long().clamp(min=min_spans)
    most = int(n_spans.max())
    # fairseq shrinks the start range when too few starts remain; spans past the end are cut
    n_starts = torch.where(n_tokens - span > n_spans, n_tokens - span, n_spans + 1)
    width = int(n_starts.max())
    scores = torch.rand(batch, width, generator=generator, device=device)
    scores[torch.arange(width, device=device)[None, :] >= n_starts[:, None]] = 2.0
    starts = scores.argsort(dim=1)[:, :most]
    # rows drawing fewer spans than the widest repeat their first start (a no-op for the union)
    unused = torch.arange(most, device=device)[None, :] >= n_spans[:, None]
    starts = torch.where(unused, starts[:, :1], starts)
    positions = (starts[:, :, None] + torch.arange(span, device=device)).flatten(1)
    mask.scatter_(1, positions, True)
    return mask[:, :n_tokens]
