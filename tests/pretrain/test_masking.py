import torch

from atst_hear.pretrain.masking import span_mask


def runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    lengths, current = [], 0
    for value in row.tolist() + [False]:
        if value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


def test_mean_masked_fraction_is_about_half_with_the_official_settings():
    generator = torch.Generator().manual_seed(1)
    mask = span_mask(2000, 250, 0.65, 5, generator=generator)
    fractions = mask.float().mean(dim=1)
    assert abs(fractions.mean().item() - 0.50) < 0.03
    # overlapping spans: far below the nominal 0.65, never above it
    assert fractions.max().item() <= 0.66
    assert 0.01 < fractions.std().item() < 0.06


def test_masks_are_spans_of_at_least_five_tokens_and_differ_per_row():
    mask = span_mask(50, 250, generator=torch.Generator().manual_seed(2))
    for row in mask:
        assert min(runs(row)) >= 5
    assert len({tuple(row.tolist()) for row in mask}) == 50


def test_masks_are_reproducible_from_the_generator_and_handle_short_inputs():
    a = span_mask(4, 250, generator=torch.Generator().manual_seed(3))
    b = span_mask(4, 250, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    short = span_mask(3, 6, generator=torch.Generator().manual_seed(4))
    assert short.shape == (3, 6) and short.any(dim=1).all()
    assert span_mask(2, 0).shape == (2, 0)
    assert not span_mask(3, 250, mask_prob=0.0, min_spans=0).any()
