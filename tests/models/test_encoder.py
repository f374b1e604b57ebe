import pytest
import torch

from atst_hear.models import ATSTConfig, ATSTEncoder

OFFICIAL_SIZES = {
    # (flavour, arch): (parameters, state-dict keys) from atst-reference.md §2.6
    ("frame", "small"): (21_475_968, 138),
    ("frame", "base"): (85_419_264, 138),
    ("clip", "small"): (21_476_352, 139),
    ("clip", "base"): (85_420_032, 139),
}


@pytest.mark.parametrize(("flavour", "arch"), list(OFFICIAL_SIZES))
def test_official_sizes_and_key_names(flavour, arch):
    encoder = ATSTEncoder(ATSTConfig.preset(flavour, arch))
    params, keys = OFFICIAL_SIZES[flavour, arch]
    assert sum(p.numel() for p in encoder.parameters()) == params
    state = encoder.state_dict()
    assert len(state) == keys
    assert "patch_embed.patch_embed.weight" in state
    assert "blocks.11.attn.qkv.weight" in state and "blocks.11.attn.qkv.bias" not in state
    assert ("norm.weight" in state) == (flavour == "clip")
    assert ("norm_frame.weight" in state) == (flavour == "frame")
    assert ("cls_token" in state) == (flavour == "clip")
    assert state["pos_embed"].shape == (1, 251, encoder.config.width)


def tiny(flavour="frame", **overrides):
    torch.manual_seed(0)
    config = ATSTConfig(flavour, width=64, depth=2, heads=1, **overrides)
    return ATSTEncoder(config).eval()


def test_patches_are_time_major_with_mel_major_vectors():
    encoder = tiny()
    mel = torch.arange(64 * 9, dtype=torch.float32).reshape(1, 1, 64, 9)
    linear = encoder.patch_embed.patch_embed
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[0, 4 * 5 + 2] = 1.0  # mel bin 5, third frame of the patch
    tokens = encoder.patch_embed(mel)
    assert tokens.shape == (1, 2, 64)  # the 9th frame is dropped
    assert tokens[0, 0, 0] == mel[0, 0, 5, 2] and tokens[0, 1, 0] == mel[0, 0, 5, 6]


@pytest.mark.parametrize("flavour", ["frame", "clip"])
def test_padding_is_masked(flavour):
    encoder = tiny(flavour)
    torch.manual_seed(1)
    short = torch.randn(1, 1, 64, 40)
    padded = torch.cat([short, torch.zeros(1, 1, 64, 60)], dim=-1)
    alone = encoder(short, n_blocks=2)
    batched = encoder(torch.cat([padded, torch.randn(1, 1, 64, 100)]), torch.tensor([40, 100]), 2)
    special = encoder.config.n_special
    for a, b in zip(alone, batched):
        torch.testing.assert_close(b[0, : special + 10], a[0], atol=1e-5, rtol=1e-5)


def test_cls_token_and_prompts_come_first():
    clip = tiny("clip")
    assert clip(torch.randn(2, 1, 64, 8))[0].shape == (2, 3, 64)
    frame = tiny("frame", n_prompt=3)
    assert "prompt_embed" in frame.state_dict()
    assert frame(torch.randn(2, 1, 64, 8))[0].shape == (2, 5, 64)
    with pytest.raises(ValueError, match="prompt tokens exist only"):
        ATSTConfig("clip", n_prompt=2)


def test_token_mask_replaces_patches_by_mask_embedding():
    encoder = tiny()
    mel = torch.randn(1, 1, 64, 16)
    mask = torch.tensor([[True, False, False, True]])
    out_a = encoder(mel, token_mask=mask)[0]
    mel_b = mel.clone()
    mel_b[..., :4] = torch.randn(1, 1, 64, 4)  # content under a masked token is invisible
    out_b = encoder(mel_b, token_mask=mask)[0]
    torch.testing.assert_close(out_a, out_b)
    assert not torch.allclose(out_a, encoder(mel)[0])


def test_rejects_inputs_the_positional_table_cannot_hold():
    encoder = tiny()
    with pytest.raises(ValueError, match="exceed the positional table of 250 tokens"):
        encoder(torch.zeros(1, 1, 64, 1004))
    with pytest.raises(ValueError, match="n_blocks must be in 1..2"):
        encoder(torch.zeros(1, 1, 64, 8), n_blocks=3)
    with pytest.raises(ValueError, match=r"log-mel \[B, 1, 64, T\]"):
        encoder(torch.zeros(1, 64, 8))


def test_config_round_trip_and_validation():
    config = ATSTConfig.preset("clip", "tiny", train_len=9.0)
    assert (config.width, config.depth, config.heads, config.train_len) == (192, 4, 3, 9.0)
    assert ATSTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown arch"):
        ATSTConfig.preset("clip", "huge")
    with pytest.raises(ValueError, match="flavour must be one of"):
        ATSTConfig("audio")
    with pytest.raises(ValueError, match="unknown ATSTConfig fields"):
        ATSTConfig.from_dict({"flavour": "clip", "colour": 1})
