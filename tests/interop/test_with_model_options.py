from __future__ import annotations

import sys

import pytest


def test_load_model_forwards_the_options_and_the_path(
    fake_hear_module, load_interop_script, monkeypatch
):
    monkeypatch.setenv("HEAR_MODULE", fake_hear_module)
    monkeypatch.setenv("HEAR_MODEL_OPTIONS", '{"compat": "official", "n_blocks": 2}')
    shim = load_interop_script("with_model_options")
    target = sys.modules[fake_hear_module]

    assert shim.load_model("weights.ckpt") == "model"
    assert shim.load_model() == "model"
    assert target.calls == [
        (("weights.ckpt",), {"compat": "official", "n_blocks": 2}),
        ((), {"compat": "official", "n_blocks": 2}),
    ]
    assert shim.get_scene_embeddings is target.get_scene_embeddings
    assert shim.get_timestamp_embeddings is target.get_timestamp_embeddings


@pytest.mark.parametrize(
    ("module", "options", "message"),
    [
        (None, "{}", "set \\$HEAR_MODULE"),
        ("fake_hear", "{compat: official}", "not valid JSON"),
        ("fake_hear", '["compat"]', "JSON object"),
    ],
)
def test_bad_settings_are_named(
    fake_hear_module, load_interop_script, monkeypatch, module, options, message
):
    if module is None:
        monkeypatch.delenv("HEAR_MODULE", raising=False)
    else:
        monkeypatch.setenv("HEAR_MODULE", module)
    monkeypatch.setenv("HEAR_MODEL_OPTIONS", options)
    with pytest.raises((RuntimeError, ValueError), match=message):
        load_interop_script("with_model_options")
