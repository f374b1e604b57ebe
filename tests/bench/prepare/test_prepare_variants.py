"""Speech Commands V2 (35 / 12) and NSynth (family / pitch) replicas -> HEAR task folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from prepare_replicas import NSYNTH_NOTES, assert_valid, run, wav_shape, write_tone

from atst_hear.bench.prepare.plan import BadInputError
from atst_hear.tasks.folder import TaskFolder


def test_spcv2_35_uses_the_official_lists(spcv2_raw, tmp_path):
    out = tmp_path / "spcv2"
    run("spcv2", spcv2_raw, out)  # 35 is the default variant

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.name, task.sample_duration, task.primary_score) == ("spcv2_35", 1.0, "top1_acc")
    assert len(task.labels) == 35
    assert task.split_labels("train") == {
        "yes_0a7c2a8d_nohash_0.wav": ["yes"],
        "bed_1a073312_nohash_0.wav": ["bed"],
        "happy_2b5e346d_nohash_2.wav": ["happy"],
    }
    assert task.split_labels("valid") == {
        "yes_0b09edd3_nohash_1.wav": ["yes"],
        "happy_2aca1e72_nohash_0.wav": ["happy"],
    }
    assert task.split_labels("test") == {
        "yes_0c40e715_nohash_0.wav": ["yes"],
        "bed_1b4c9b89_nohash_0.wav": ["bed"],
    }
    # the 0.8 s utterance is padded to 1 s
    assert wav_shape(task.audio_path("train", "happy_2b5e346d_nohash_2.wav")) == (16000, 16000, 1)


def test_spcv2_12_follows_hear_silence_unknown_and_test_set(spcv2_raw, tmp_path):
    out = tmp_path / "spcv2-12"
    manifest = run("spcv2", spcv2_raw, out, variant="12")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert task.name == "spcv2_12"
    assert len(task.labels) == 12 and {"_silence_", "_unknown_", "yes"} <= set(task.labels)
    assert task.split_labels("train") == {
        "yes_0a7c2a8d_nohash_0.wav": ["yes"],
        "bed_1a073312_nohash_0.wav": ["_unknown_"],
        "happy_2b5e346d_nohash_2.wav": ["_unknown_"],
        "_silence__white_noise-0.wav": ["_silence_"],
        "_silence__white_noise-8000.wav": ["_silence_"],
    }
    assert task.split_labels("valid") == {
        "yes_0b09edd3_nohash_1.wav": ["yes"],
        "happy_2aca1e72_nohash_0.wav": ["_unknown_"],
        "_silence__running_tap-0.wav": ["_silence_"],
        "_silence__running_tap-8000.wav": ["_silence_"],
        "_silence__running_tap-16000.wav": ["_silence_"],
    }
    assert task.split_labels("test") == {
        "yes_0d2bcf9d_nohash_0.wav": ["yes"],
        "_silence__silence_0.wav": ["_silence_"],
        "_unknown__bird_0a9f9af7.wav": ["_unknown_"],
    }
    silence = next(c for c in manifest["clips"] if c["file"] == "_silence__running_tap-8000.wav")
    assert silence["source"] == "speech_commands_v0.02/_background_noise_/running_tap.wav"
    assert silence["source_offset_s"] == 0.5 and silence["duration_s"] == 1.0
    assert wav_shape(task.audio_path("valid", "_silence__running_tap-16000.wav")) == (
        16000,
        16000,
        1,
    )
    assert any("2 clips of testing_list.txt are not used" in note for note in manifest["notes"])


def test_nsynth_family_keeps_official_splits(nsynth_raw, tmp_path):
    out = tmp_path / "nsynth"
    run("nsynth", nsynth_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.name, task.sample_duration, task.primary_score) == (
        "nsynth_family",
        4.0,
        "top1_acc",
    )
    assert len(task.labels) == 11
    for split, notes in NSYNTH_NOTES.items():
        assert task.split_labels(split) == {f"{note}.wav": [family] for note, family, _ in notes}
        for note, _, _ in notes:
            assert wav_shape(task.audio_path(split, f"{note}.wav")) == (16000, 64000, 1)


def test_nsynth_pitch_follows_hear(nsynth_raw, tmp_path):
    out = tmp_path / "nsynth-pitch"
    manifest = run("nsynth", nsynth_raw, out, variant="pitch")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert task.name == "nsynth_pitch"
    assert task.evaluation == ["pitch_acc", "chroma_acc"]
    assert (task.metadata["pitch_range_min"], task.metadata["pitch_range_max"]) == (21, 108)
    # numeric order, so that index modulo 12 is the chroma (what chroma_acc relies on)
    assert task.labels == [str(pitch) for pitch in range(21, 109)]
    assert task.split_labels("train") == {
        "bass_synthetic_033-022-050.wav": ["22"],
        "guitar_acoustic_010-060-100.wav": ["60"],
    }
    assert task.split_labels("valid") == {"keyboard_electronic_001-108-075.wav": ["108"]}
    assert "1 notes outside MIDI 21-108 left out (as in HEAR)" in manifest["notes"]


def test_spcv2_reports_missing_listed_file_and_unknown_word_folder(spcv2_raw, tmp_path):
    root = spcv2_raw / "speech_commands_v0.02"
    (root / "yes/0b09edd3_nohash_1.wav").unlink()  # listed in validation_list.txt
    with pytest.raises(BadInputError, match="0b09edd3_nohash_1.wav: audio file is missing"):
        run("spcv2", spcv2_raw, tmp_path / "strict")

    write_tone(root / "hello" / "3c2e1f0a_nohash_0.wav", 16000, 1.0)
    manifest = run("spcv2", spcv2_raw, tmp_path / "lenient", skip_bad=True)
    assert {(Path(e["source"]).name, e["reason"]) for e in manifest["skipped"]} == {
        ("hello", "unknown label: 'hello' is not one of the 35 words"),
        ("0b09edd3_nohash_1.wav", "audio file is missing"),
    }
    assert_valid(tmp_path / "lenient")
