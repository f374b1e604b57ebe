"""ESC-50, UrbanSound8K, FSD50K, VoxCeleb1 and GTZAN replicas -> HEAR task folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from prepare_replicas import (
    FSD50K_DEV,
    FSD50K_EVAL,
    GTZAN_FOLD_STEMS,
    US8K_CLASSES,
    US8K_ROWS,
    VOXCELEB1_SPLIT,
    assert_valid,
    build_gtzan,
    run,
    us8k_name,
    wav_shape,
)

from atst_hear.fileio import sha256_file
from atst_hear.tasks.folder import TaskFolder

FOLDS_5 = [f"fold{k:02d}" for k in range(5)]
FOLDS_10 = [f"fold{k:02d}" for k in range(10)]


def test_esc50_keeps_official_folds_labels_and_5_s_clips(esc50_raw, tmp_path):
    out = tmp_path / "esc50"
    manifest = run("esc50", esc50_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.name, task.embedding_type, task.prediction_type) == (
        "esc50",
        "scene",
        "multiclass",
    )
    assert (task.split_mode, task.splits, task.sample_duration) == ("presplit_kfold", FOLDS_5, 5.0)
    assert task.evaluation == ["top1_acc", "mAP", "d_prime", "aucroc"]
    assert len(task.labels) == 50 and task.labels == sorted(task.labels)
    for fold in range(1, 6):
        assert task.split_labels(f"fold{fold - 1:02d}") == {
            f"{fold}-10{fold}0-A-0.wav": ["dog"],
            f"{fold}-10{fold}1-A-10.wav": ["rain"],
        }
        for name in task.split_labels(f"fold{fold - 1:02d}"):
            assert wav_shape(task.audio_path(f"fold{fold - 1:02d}", name)) == (16000, 80000, 1)

    # the 4.5 s source is padded with silence, not stretched
    padded, rate = sf.read(str(task.audio_path("fold00", "1-1011-A-10.wav")))
    assert np.abs(padded[-int(0.45 * rate) :]).max() == 0
    assert np.abs(padded[: int(4.4 * rate)]).max() > 0.25

    entry = next(c for c in manifest["clips"] if c["file"] == "1-1011-A-10.wav")
    assert entry["source"] == "ESC-50-master/audio/1-1011-A-10.wav"
    assert entry["labels"] == ["rain"]
    assert (entry["source_sample_rate"], entry["source_channels"]) == (44100, 1)
    assert (entry["source_duration_s"], entry["duration_s"]) == (4.5, 5.0)
    assert entry["source_sha256"] == sha256_file(esc50_raw / entry["source"])
    assert entry["sha256"] == sha256_file(task.audio_path("fold00", "1-1011-A-10.wav"))
    assert manifest["dataset"] == "esc50" and manifest["converter_version"] >= 1
    assert "partial dataset: clips: found 10, the release has 2000" in manifest["warnings"]
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_us8k_converts_every_source_format_to_16_khz_mono_4_s(us8k_raw, tmp_path):
    out = tmp_path / "us8k"
    manifest = run("us8k", us8k_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.split_mode, task.splits, task.sample_duration) == ("presplit_kfold", FOLDS_10, 4.0)
    assert len(task.labels) == 10
    for row, (fold, class_id, rate, channels, _, seconds) in enumerate(US8K_ROWS):
        name = us8k_name(row)
        assert task.split_labels(f"fold{fold - 1:02d}")[name] == [US8K_CLASSES[class_id]]
        assert wav_shape(task.audio_path(f"fold{fold - 1:02d}", name)) == (16000, 64000, 1)
        entry = next(c for c in manifest["clips"] if c["file"] == name)
        assert (entry["source_sample_rate"], entry["source_channels"]) == (rate, channels)
        assert entry["source_duration_s"] == pytest.approx(seconds, abs=1e-4)
    assert sum(len(task.split_labels(fold)) for fold in FOLDS_10) == len(US8K_ROWS)


def test_fsd50k_is_multilabel_variable_length_with_official_splits(fsd50k_raw, tmp_path):
    out = tmp_path / "fsd50k"
    run("fsd50k", fsd50k_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.prediction_type, task.sample_duration) == ("multilabel", None)
    assert task.primary_score == "mAP" and task.splits == ["train", "valid", "test"]
    assert task.labels == ["Bark", "Dog", "Domestic_animals_and_pets", "Speech"]
    expected = {"train": {}, "valid": {}, "test": {}}
    for fname, labels, split in FSD50K_DEV:
        expected["train" if split == "train" else "valid"][f"{fname}.wav"] = labels.split(",")
    for fname, labels in FSD50K_EVAL:
        expected["test"][f"{fname}.wav"] = labels.split(",")
    for split, files in expected.items():
        assert task.split_labels(split) == files
    # variable length: the 0.4 s clip stays 0.4 s
    assert wav_shape(task.audio_path("train", "64760.wav")) == (16000, 6400, 1)


def test_voxceleb1_follows_the_identification_split(voxceleb1_raw, tmp_path):
    out = tmp_path / "voxceleb1"
    run("voxceleb1", voxceleb1_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.prediction_type, task.sample_duration, task.labels) == (
        "multiclass",
        None,
        ["id10001", "id10002"],
    )
    splits = {"1": "train", "2": "valid", "3": "test"}
    for n, (code, relpath) in enumerate(VOXCELEB1_SPLIT):
        name = relpath.replace("/", "_")
        assert task.split_labels(splits[code])[name] == [relpath.split("/")[0]]
        frames = round((1.5 + 0.5 * n) * 16000)
        assert wav_shape(task.audio_path(splits[code], name)) == (16000, frames, 1)


def test_gtzan_folds_group_consecutive_excerpts_and_read_au(gtzan_raw, tmp_path):
    out = tmp_path / "gtzan"
    run("gtzan", gtzan_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.name, task.split_mode, task.splits) == ("gtzan_folds", "new_split_kfold", FOLDS_10)
    for stem in GTZAN_FOLD_STEMS:
        fold = f"fold{int(stem.split('.')[1]) // 10:02d}"
        assert task.split_labels(fold) == {f"{stem}.wav": [stem.split(".")[0]]}
        assert wav_shape(task.audio_path(fold, f"{stem}.wav")) == (16000, 480000, 1)


def test_gtzan_filtered_uses_the_published_split(tmp_path):
    from torchaudio.datasets import gtzan as published

    chosen = {
        "train": published.filtered_train[0],
        "valid": published.filtered_valid[0],
        "test": published.filtered_test[0],
    }
    listed = {*published.filtered_train, *published.filtered_valid, *published.filtered_test}
    outside = "classical.00042"  # one of the 70 excerpts the filtered split leaves out
    assert outside not in listed and len(listed) == 930
    raw = build_gtzan(tmp_path / "raw", [*chosen.values(), outside])
    out = tmp_path / "gtzan"
    manifest = run("gtzan", raw, out, variant="filtered")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.name, task.split_mode) == ("gtzan_filtered", "trainvaltest")
    for split, stem in chosen.items():
        assert task.split_labels(split) == {f"{stem}.wav": [stem.split(".")[0]]}
    assert "1 excerpts outside the fault-filtered split left out" in manifest["notes"]
    assert any("excerpts in the filtered split: found 3" in w for w in manifest["warnings"])


# --- groups: the recording, video or uploader each clip comes from --------------------------
def test_converters_record_the_group_of_every_clip(
    esc50_raw, us8k_raw, voxceleb1_raw, gtzan_raw, tmp_path
):
    run("esc50", esc50_raw, tmp_path / "esc50")
    esc50 = TaskFolder.open(tmp_path / "esc50")
    assert esc50.groups("fold02") == {
        "3-1030-A-0.wav": "src_file:1030",
        "3-1031-A-10.wav": "src_file:1031",
    }
    run("us8k", us8k_raw, tmp_path / "us8k")
    us8k = TaskFolder.open(tmp_path / "us8k")
    for row, (fold, *_) in enumerate(US8K_ROWS):
        assert us8k.groups(f"fold{fold - 1:02d}")[us8k_name(row)] == f"fsID:{100000 + fold}"
    run("voxceleb1", voxceleb1_raw, tmp_path / "voxceleb1")
    voxceleb1 = TaskFolder.open(tmp_path / "voxceleb1")
    # utterances 00003 (valid) and 00004 (test) come from one video
    assert voxceleb1.groups("valid")["id10001_Y8hIVOBuels_00003.wav"] == "video:id10001/Y8hIVOBuels"
    assert voxceleb1.groups("test")["id10001_Y8hIVOBuels_00004.wav"] == "video:id10001/Y8hIVOBuels"
    run("gtzan", gtzan_raw, tmp_path / "gtzan")
    gtzan = TaskFolder.open(tmp_path / "gtzan")
    for stem in GTZAN_FOLD_STEMS:
        block = int(stem.split(".")[1]) // 10
        assert (
            gtzan.groups(f"fold{block:02d}")[f"{stem}.wav"] == f"block:{stem.split('.')[0]}.{block}"
        )
    for task in (esc50, us8k, voxceleb1, gtzan):
        assert_valid(task.path)


def test_fsd50k_groups_by_uploader_only_when_the_metadata_is_there(fsd50k_raw, tmp_path):
    run("fsd50k", fsd50k_raw, tmp_path / "plain")
    assert not TaskFolder.open(tmp_path / "plain").has_groups
    info = fsd50k_raw / "FSD50K.metadata"
    info.mkdir()
    dev = {str(fname): {"uploader": f"user{n % 2}"} for n, (fname, _, _) in enumerate(FSD50K_DEV)}
    (info / "dev_clips_info_FSD50K.json").write_text(json.dumps(dev))
    evaluation = {str(fname): {"uploader": "user9"} for fname, _ in FSD50K_EVAL}
    (info / "eval_clips_info_FSD50K.json").write_text(json.dumps(evaluation))
    run("fsd50k", fsd50k_raw, tmp_path / "grouped")
    task = TaskFolder.open(tmp_path / "grouped")
    assert task.groups("train") == {"64760.wav": "uploader:user0", "16399.wav": "uploader:user1"}
    assert set(task.groups("test").values()) == {"uploader:user9"}
    assert_valid(task.path)
