"""Every kind of bad input a new user throws at the HEAR modules and the CLI (issue 14).

Each case asserts that the error names the file or value at fault and says what was expected.
The property tests at the end check the HEAR contract over audio shapes, lengths and dtypes.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atst_hear import cli
from atst_hear.audio import AudioError, check_waveform_batch, decode_audio, read_audio
from atst_hear.hear import c2f, clip, frame
from atst_hear.models import ATSTConfig, ATSTEncoder
from atst_hear.models.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    load_archive,
    load_encoder,
    save_safetensors,
)
from atst_hear.options import OptionError
from atst_hear.tasks.validation import validate_task_folder


@pytest.fixture(scope="module")
def tiny_frame():
    return frame.load_model(random_init="tiny")


def write_pcm16(path, n_samples=16000, rate=16000, channels=1):
    rng = np.random.default_rng(0)
    sf.write(path, rng.uniform(-0.5, 0.5, (n_samples, channels)), rate, subtype="PCM_16")
    return path


# --- audio files ------------------------------------------------------------------------------
def test_truncated_wav_is_refused_naming_the_file(tmp_path):
    full = write_pcm16(tmp_path / "full.wav", 32000)
    data = full.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 15989 * 2 + 1])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated WAV.*declares 32000.*holds 15989"):
        read_audio(tmp_path / "cut.wav")
    # an open file (a tar member) alike
    with (
        open(tmp_path / "cut.wav", "rb") as handle,
        pytest.raises(AudioError, match=r"member\.wav: truncated WAV"),
    ):
        decode_audio(handle, "member.wav")
    assert read_audio(full).shape == (32000,)


def test_wav_with_trailing_chunks_is_not_truncated(tmp_path):
    path = write_pcm16(tmp_path / "tagged.wav", 1600)
    data = bytearray(path.read_bytes())
    data += b"LIST" + (4).to_bytes(4, "little") + b"INFO"  # a chunk after the data
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert read_audio(path).shape == (1600,)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot decode audio"),
        (b"hello, this is text and not a wav file\n" * 4, "cannot decode audio"),
        (b"RIFF0000WAVEjunk", "cannot decode audio"),
    ],
    ids=["zero-byte", "text-as-wav", "corrupt-header"],
)
def test_unreadable_audio_names_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=rf"bad\.wav: {message}"):
        read_audio(path)


def test_missing_path_and_directory_are_told_apart(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such audio file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(CheckpointError, match=r"is a directory; expected a checkpoint file"):
        load_encoder(tmp_path)
    with pytest.raises(CheckpointError, match=r"missing\.ckpt: checkpoint file does not exist"):
        load_encoder(tmp_path / "missing.ckpt")


def test_empty_and_non_finite_files(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"empty\.wav: audio file holds no samples"):
        read_audio(tmp_path / "empty.wav")
    wave = np.zeros(1600, dtype=np.float32)
    wave[10] = np.nan
    sf.write(tmp_path / "nan.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio contains NaN or Inf"):
        read_audio(tmp_path / "nan.wav")


def test_stereo_and_other_rates_are_mixed_and_resampled(tmp_path):
    stereo = read_audio(write_pcm16(tmp_path / "stereo.wav", 8000, rate=8000, channels=2))
    assert stereo.shape == (16000,) and stereo.dtype == torch.float32
    assert read_audio(write_pcm16(tmp_path / "cd.wav", 44100, rate=44100)).shape == (16000,)


# --- waveform tensors (the HEAR API) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (torch.zeros(16000), r"must be 2-D \[n_sounds, n_samples\], got shape \(16000,\)"),
        (torch.zeros(2, 2, 16000), r"must be 2-D .* got shape \(2, 2, 16000\)"),  # stereo batch
        (torch.zeros(1, 16000, dtype=torch.int16), "must be floating point, got dtype torch.int16"),
        (torch.zeros(0, 16000), r"is empty: shape \(0, 16000\)"),
        (torch.zeros(1, 0), r"is empty: shape \(1, 0\)"),
        (torch.full((2, 1000), float("nan")), r"NaN or Inf values \(rows \[0, 1\]\)"),
        (torch.tensor([[0.0, float("inf")] * 500]), r"NaN or Inf values \(rows \[0\]\)"),
        (np.zeros((1, 16000), dtype=np.float32), "must be a torch.Tensor, got ndarray"),
    ],
    ids=["1-d", "stereo-3d", "int16", "no-sounds", "no-samples", "nan", "inf", "numpy"],
)
def test_bad_waveforms_say_what_was_expected(tiny_frame, audio, message):
    with pytest.raises(AudioError, match=message):
        frame.get_scene_embeddings(audio, tiny_frame)


def test_audio_far_outside_unit_range_is_refused(tiny_frame):
    quiet = torch.rand(1, 16000) * 0.2 - 0.1
    loud = quiet * 1000  # e.g. int16 sample values passed as float
    with pytest.raises(AudioError, match=r"peaks at 9\d\.\d+, expected float samples in \[-1, 1\]"):
        frame.get_scene_embeddings(loud, tiny_frame)
    with pytest.raises(AudioError, match="max_amplitude=None"):
        frame.get_timestamp_embeddings(loud, tiny_frame)
    # resampling overshoot is fine; an explicit max_amplitude=None accepts any finite level
    frame.get_scene_embeddings(quiet * 12, tiny_frame)
    anything = frame.load_model(random_init="tiny", max_amplitude=None)
    assert torch.isfinite(frame.get_scene_embeddings(loud, anything)).all()
    with pytest.raises(OptionError, match="max_amplitude must be a finite number > 0, got 0"):
        frame.load_model(random_init="tiny", max_amplitude=0)


def test_long_audio_check_is_blockwise_and_finds_late_nan():
    audio = torch.zeros(2, 3 * (1 << 20) + 5)
    audio[1, -1] = float("nan")
    with pytest.raises(AudioError, match=r"rows \[1\]"):
        check_waveform_batch(audio)


# --- load_model options -----------------------------------------------------------------------
@pytest.mark.parametrize("module", [frame, clip, c2f], ids=["frame", "clip", "c2f"])
@pytest.mark.parametrize("value", ["false", "False", 0, 1, None, "true"])
def test_trust_checkpoint_must_be_a_real_bool(official_fixtures, tmp_path, module, value):
    """The security hole: a string "false" (JSON --model-options, quoted YAML) is truthy."""
    with pytest.raises(OptionError, match=rf"trust_checkpoint must be True or False .*{value!r}"):
        module.load_model(official_fixtures / "frame_tiny.ckpt", trust_checkpoint=value)


def test_trust_checkpoint_string_never_unpickles_code(official_fixtures, tmp_path):
    archive = load_archive(official_fixtures / "frame_tiny.ckpt")
    marker = tmp_path / "pwned"
    archive["callbacks"] = {"evil": _RunsCode(marker)}
    torch.save(archive, tmp_path / "evil.ckpt")
    for value in ("false", "true", 1):
        with pytest.raises(OptionError, match="trust_checkpoint"):
            load_archive(tmp_path / "evil.ckpt", trust_checkpoint=value)
        with pytest.raises(OptionError, match="trust_checkpoint"):
            frame.load_model(tmp_path / "evil.ckpt", trust_checkpoint=value)
    with pytest.raises(UnsafeCheckpointError):
        frame.load_model(tmp_path / "evil.ckpt", trust_checkpoint=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"max_batch_tokens": "10000"},
            r"max_batch_tokens must be an integer, got '10000' \(str\)",
        ),
        ({"n_blocks": 2.7}, r"n_blocks must be an integer, got 2\.7 \(float\)"),
        ({"n_blocks": True}, r"n_blocks must be an integer, got True \(bool\)"),
        ({"n_blocks": 0}, "n_blocks must be at least 1, got 0"),
        ({"n_blocks": 9}, r"n_blocks must be in 1\.\.4, got 9"),
        ({"seed": "0"}, r"seed must be an integer, got '0'"),
        ({"compat": "offical"}, r"compat must be one of \('default', 'official'\), got 'offical'"),
        ({"encoder": 1}, r"encoder must be one of \('teacher', 'student'\), got 1 \(int\)"),
        ({"random_init": "huge"}, r"random_init must be one of \('base', 'small', 'tiny'\)"),
        ({"n_block": 2}, r"atst_hear\.hear\.frame\.load_model: unknown options \['n_block'\]"),
        ({"checkpoint_sha256": "abc"}, "checkpoint_sha256 must be 64 hexadecimal digits"),
        ({"max_amplitude": "2"}, r"max_amplitude must be a finite number > 0, got '2'"),
    ],
)
def test_option_types_and_names_are_checked(options, message):
    with pytest.raises(OptionError, match=message):
        frame.load_model(**{"random_init": "tiny", **options})


def test_unknown_option_names_the_public_function_not_the_internal_one():
    with pytest.raises(OptionError) as raised:
        clip.load_model(random_init="tiny", layers=2)
    assert "atst_hear.hear.clip.load_model" in str(raised.value)
    assert "load_embedder" not in str(raised.value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, TypeError)


# --- checkpoints ------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_state(flavour="frame"):
    torch.manual_seed(0)
    return ATSTEncoder(ATSTConfig(flavour, width=64, depth=2, heads=1)).state_dict()


def test_nan_weights_are_refused_at_load_naming_the_tensor(tmp_path):
    state = _tiny_state()
    state["blocks.1.attn.qkv.weight"][0, :3] = float("nan")
    torch.save(state, tmp_path / "diverged.ckpt")
    with pytest.raises(
        CheckpointError, match=r"diverged\.ckpt: tensor 'blocks\.1\.attn\.qkv\.weight' holds 3"
    ):
        frame.load_model(tmp_path / "diverged.ckpt")
    state["blocks.1.attn.qkv.weight"][0, :3] = float("inf")
    torch.save(
        {"state_dict": {f"model.teacher.encoder.{k}": v for k, v in state.items()}},
        tmp_path / "inf.ckpt",
    )
    with pytest.raises(CheckpointError, match="NaN/Inf values"):
        load_encoder(tmp_path / "inf.ckpt")


def test_nan_weights_in_safetensors_are_refused(tmp_path, official_fixtures):
    from atst_hear.models.checkpoints import EncoderWeights, read_encoder_weights

    weights = read_encoder_weights(official_fixtures / "frame_tiny.ckpt")
    poisoned = {k: v.clone() for k, v in weights.state_dict.items()}
    poisoned["pos_embed"][0, 0, 0] = float("nan")
    save_safetensors(
        EncoderWeights(weights.config, poisoned, weights.layout, weights.source),
        tmp_path / "nan.safetensors",
    )
    with pytest.raises(CheckpointError, match=r"nan\.safetensors: tensor 'pos_embed'"):
        load_encoder(tmp_path / "nan.safetensors")


def test_wrong_shaped_tensor_names_file_tensor_and_shapes(tmp_path):
    state = _tiny_state()
    state["blocks.0.mlp.fc2.weight"] = torch.zeros(64, 100)
    torch.save(state, tmp_path / "mismatched.pt")
    with pytest.raises(
        CheckpointError,
        match=r"mismatched\.pt: tensor 'blocks\.0\.mlp\.fc2\.weight' has shape \(64, 100\).*"
        r"expects \(64, 256\)",
    ):
        load_encoder(tmp_path / "mismatched.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_random_bytes_do_not_advise_turning_safety_off(tmp_path):
    (tmp_path / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError) as raised:
        load_encoder(tmp_path / "random.ckpt")
    message = str(raised.value)
    assert "random.ckpt: not a readable PyTorch checkpoint" in message
    assert "expected an ATST .ckpt" in message
    assert "weights_only" not in message and "arbitrary code" not in message


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "checkpoint file is empty"),
        (pickle.dumps([1, 2, 3]), "not a readable PyTorch checkpoint"),
        (b"text, not a checkpoint\n" * 8, "not a readable PyTorch checkpoint"),
    ],
    ids=["zero-byte", "pickled-list", "text"],
)
def test_broken_checkpoints(tmp_path, content, message):
    (tmp_path / "broken.ckpt").write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"broken\.ckpt.*{message}"):
        frame.load_model(tmp_path / "broken.ckpt")


def test_truncated_and_foreign_checkpoints(tmp_path, official_fixtures):
    data = (official_fixtures / "frame_tiny.ckpt").read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half\.ckpt: not a readable PyTorch checkpoint"):
        frame.load_model(tmp_path / "half.ckpt")
    torch.save({"state_dict": {"model.fc.weight": torch.zeros(2, 2)}}, tmp_path / "resnet.ckpt")
    with pytest.raises(CheckpointError, match=r"resnet\.ckpt: no ATST encoder found"):
        frame.load_model(tmp_path / "resnet.ckpt")
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match=r"list\.ckpt: expected a checkpoint dictionary"):
        frame.load_model(tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="holds an ATST-Frame encoder.*use atst_hear.hear"):
        clip.load_model(official_fixtures / "frame_tiny.ckpt")


# --- the CLI ----------------------------------------------------------------------------------
def test_embed_out_pointing_at_a_file_is_a_clean_error(tmp_path, official_fixtures, capsys):
    audio = write_pcm16(tmp_path / "a.wav")
    (tmp_path / "taken").write_text("not a folder")
    code = cli.main(
        [
            "embed",
            "--model",
            "frame",
            "--checkpoint",
            str(official_fixtures / "frame_tiny.ckpt"),
            "--out",
            str(tmp_path / "taken"),
            str(audio),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 'taken'}: File exists (expected a folder, found a file)" in err


def test_cli_reports_a_truncated_wav(tmp_path, official_fixtures, capsys):
    data = write_pcm16(tmp_path / "full.wav", 32000).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:20000])
    code = cli.main(
        [
            "embed",
            "--model",
            "frame",
            "--checkpoint",
            str(official_fixtures / "frame_tiny.ckpt"),
            "--out",
            str(tmp_path / "out"),
            str(tmp_path / "cut.wav"),
        ]
    )
    assert code == 2 and "cut.wav: truncated WAV" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.npy"))


def _task_folder(root, name, split_bytes=None):
    folder = root / name
    (folder / "16000" / "test").mkdir(parents=True)
    write_pcm16(folder / "16000" / "test" / "a.wav", 16000)
    meta = {
        "task_name": name,
        "version": "1",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "splits": ["fold00", "fold01"],
        "sample_duration": 1.0,
        "evaluation": ["top1_acc"],
    }
    (folder / "task_metadata.json").write_text(json.dumps(meta))
    (folder / "labelvocabulary.csv").write_text("idx,label\n0,x\n")
    for split in meta["splits"]:
        (folder / "16000" / split).mkdir(parents=True, exist_ok=True)
        write_pcm16(folder / "16000" / split / "a.wav", 16000)
        (folder / f"{split}.json").write_bytes(split_bytes or b'{"a.wav": ["x"]}')
    return folder


def test_validate_task_non_utf8_json_names_the_file_and_checks_later_folders(tmp_path, capsys):
    bad = _task_folder(tmp_path, "latin1", split_bytes='{"caf\xe9.wav": ["x"]}'.encode("latin-1"))
    good = _task_folder(tmp_path, "good")
    problems = validate_task_folder(bad)
    assert any(
        p.path.endswith("fold00.json") and "not UTF-8 text" in p.message for p in problems
    ), problems
    code = cli.main(["validate-task", str(bad), str(good)])
    out = capsys.readouterr().out
    assert code == 1
    assert "fold00.json: not UTF-8 text" in out and f"{good}: ok" in out
    meta = bad / "task_metadata.json"
    meta.write_bytes(meta.read_bytes().replace(b'"latin1"', b'"caf\xe9"'))
    assert "not UTF-8" in str(validate_task_folder(bad)[0])
    (bad / "labelvocabulary.csv").write_bytes(b"idx,label\n0,caf\xe9\n")
    meta.write_text(meta.read_bytes().decode("latin-1").replace("caf\xe9", "latin1"))
    assert any(
        "labelvocabulary.csv" in str(p) and "not UTF-8" in str(p) for p in validate_task_folder(bad)
    )


def test_recipe_booleans_must_be_real_bools():
    from atst_hear.pretrain.distill import DistillRecipe
    from atst_hear.pretrain.recipes import RecipeError

    with pytest.raises(RecipeError, match=r"my\.yaml: mixup must be True or False .*'false'"):
        DistillRecipe.from_dict({"mixup": "false"}, source="my.yaml")
    assert DistillRecipe.from_dict({"mixup": False}).mixup is False


# --- property tests: the HEAR contract --------------------------------------------------------
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n_sounds=st.integers(1, 3),
    n_samples=st.one_of(st.integers(1, 700), st.integers(700, 40000)),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
    level=st.floats(0.0, 1.0),
)
def test_hear_contract_over_shapes_lengths_and_dtypes(
    tiny_frame, n_sounds, n_samples, dtype, level
):
    generator = torch.Generator().manual_seed(n_samples)
    audio = ((torch.rand(n_sounds, n_samples, generator=generator) * 2 - 1) * level).to(dtype)
    scene = frame.get_scene_embeddings(audio, tiny_frame)
    embeddings, timestamps = frame.get_timestamp_embeddings(audio, tiny_frame)
    assert scene.shape == (n_sounds, tiny_frame.scene_embedding_size)
    assert scene.dtype == embeddings.dtype == torch.float32
    assert embeddings.shape[0] == n_sounds and embeddings.shape[1] >= 1
    assert embeddings.shape[2] == tiny_frame.timestamp_embedding_size
    assert timestamps.shape == embeddings.shape[:2]
    assert bool(torch.isfinite(scene).all()) and bool(torch.isfinite(embeddings).all())
    stamps = timestamps[0]
    assert bool((stamps[1:] > stamps[:-1]).all())
    assert float(stamps[-1]) <= 1000.0 * max(n_samples, 640) / 16000


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    dtype=st.sampled_from([torch.float32, torch.int16, torch.int32, torch.uint8, torch.bool]),
)
def test_malformed_batches_are_rejected_with_the_observed_shape_or_dtype(shape, dtype):
    audio = torch.zeros(shape, dtype=dtype)
    well_formed = len(shape) == 2 and dtype == torch.float32 and all(shape)
    if well_formed:
        assert check_waveform_batch(audio) is audio
        return
    with pytest.raises(AudioError) as raised:
        check_waveform_batch(audio)
    message = str(raised.value)
    assert str(tuple(shape)) in message or str(dtype) in message
