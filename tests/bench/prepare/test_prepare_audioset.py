"""AudioSet replicas -> AS-20K / AS-2M scene folders, the AS-strong event folder and pre-training
shards: missing clips listed, not fatal; corrupt audio and unknown label ids are bad input."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from prepare_replicas import assert_valid, run, wav_shape, write_text, write_tone

from atst_hear.bench.prepare import audioset, commands
from atst_hear.bench.prepare.audioset_files import youtube_ids
from atst_hear.bench.prepare.audioset_strong import merge_overlaps
from atst_hear.bench.prepare.plan import BadInputError
from atst_hear.cli import main
from atst_hear.pretrain.data import AudioStream, open_source
from atst_hear.tasks.folder import Event, TaskFolder

CLASSES = [
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/04rlf", "Music"),
    ("/m/0k4j", "Car"),
]
# list -> (YouTube id, labels, how its audio file is named or None when the video is gone)
SEGMENTS = {
    "balanced_train_segments.csv": [
        ("--PJHxphWEs", "/m/09x0r,/m/05zppz", "audio/balanced_train_segments/Y--PJHxphWEs.wav"),
        ("abcdEFGH123", "/m/04rlf", "audio/bal/abcdEFGH123_30.000_40.000.flac"),
        ("YabcdEFGH12", "/m/0k4j", "audio/bal/YabcdEFGH12.wav"),  # an id starting with Y
        ("gone0000000", "/m/0k4j,/m/04rlf", None),
    ],
    "unbalanced_train_segments.csv": [
        ("unbal_00001", "/m/09x0r", "audio/unbal/part00/Yunbal_00001.ogg"),
        ("gone0000001", "/m/04rlf", None),
    ],
    "eval_segments.csv": [
        ("eval-000001", "/m/09x0r", "audio/eval/Yeval-000001.wav"),
        ("eval-000002", "/m/04rlf,/m/0k4j", "audio/eval/eval-000002.wav"),
        ("gone0000002", "/m/0k4j", None),
    ],
}


def build_audioset(raw: Path, corrupt: bool = False, unknown_label: bool = False) -> Path:
    """Google's lists in ``csv/`` (three '#' header lines, quoted label lists) and audio named by
    YouTube id in the ways downloaders name it, in several formats and rates."""
    rows = ["index,mid,display_name"] + [
        f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(CLASSES)
    ]
    write_text(raw / "csv" / "class_labels_indices.csv", "\n".join(rows) + "\n")
    for n, (table, segments) in enumerate(SEGMENTS.items()):
        lines = [
            "# Segments csv created Sun Mar  5 10:54:25 2017",
            f"# num_ytids={len(segments)}, num_segs={len(segments)}, num_unique_labels=4, "
            "num_positive_labels=9",
            "# YTID, start_seconds, end_seconds, positive_labels",
        ]
        for k, (ytid, labels, audio) in enumerate(segments):
            if unknown_label and (n, k) == (0, 1):
                labels += ",/m/not_a_class"
            lines.append(f'{ytid}, 30.000, 40.000, "{labels}"')
            if audio is not None:
                rate, fmt = {".flac": (48000, "FLAC"), ".ogg": (22050, "OGG")}.get(
                    Path(audio).suffix, (44100, "WAV")
                )
                subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
                seconds = 9.5 if ytid == "YabcdEFGH12" else 10.0  # one short clip to pad
                write_tone(raw / audio, rate, seconds, 2, subtype, fmt, freq=200 + 40 * k)
        write_text(raw / "csv" / table, "\n".join(lines) + "\n")
    if corrupt:
        write_text(raw / SEGMENTS["eval_segments.csv"][1][2], "not audio at all")
    return raw


@pytest.fixture
def audioset_raw(tmp_path: Path) -> Path:
    return build_audioset(tmp_path / "raw")


def test_as20k_folder_lists_missing_clips_and_validates_on_eval_as_the_official_recipe(
    audioset_raw, tmp_path
):
    out = tmp_path / "as20k"
    manifest = run("audioset", audioset_raw, out, variant="balanced")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert task.name == "audioset_20k" and task.primary_score == "mAP"
    assert task.is_multilabel and task.sample_duration == 10.0
    assert task.labels == sorted(name for _, name in CLASSES)
    assert task.split_labels("train") == {
        "Y--PJHxphWEs.wav": ["Male speech, man speaking", "Speech"],
        "YabcdEFGH123.wav": ["Music"],
        "YYabcdEFGH12.wav": ["Car"],
    }
    test = task.split_labels("test")
    assert test == {"Yeval-000001.wav": ["Speech"], "Yeval-000002.wav": ["Car", "Music"]}
    # official: valid.csv is written from the eval list, so valid = the eval clips again
    assert task.split_labels("valid") == {f"{n[:-4]}.valid.wav": v for n, v in test.items()}
    assert "test clips again" in task.metadata["valid_source"]
    for split, name in [("train", "YYabcdEFGH12.wav"), ("test", "Yeval-000002.wav")]:
        assert wav_shape(task.audio_path(split, name)) == (16000, 160000, 1)

    assert manifest["missing"] == {"train": ["gone0000000"], "test": ["gone0000002"]}
    coverage = manifest["coverage"]
    assert (coverage["train"]["listed"], coverage["train"]["found"]) == (4, 3)
    assert coverage["train"]["fraction"] == 0.75
    assert coverage["train"]["classes"]["Car"] == [1, 2]
    assert coverage["test"]["classes"]["Speech"] == [1, 1]
    assert manifest["skipped"] == []
    assert manifest["found_counts"]["balanced segments"] == 4
    assert manifest["known_counts"]["balanced segments"] == 4  # the header's num_segs
    assert any("3 of 4 listed clips found (75.0%)" in note for note in manifest["notes"])
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["missing"] == manifest["missing"]


def test_as2m_trains_on_unbalanced_plus_balanced(audioset_raw, tmp_path):
    out = tmp_path / "as2m"
    manifest = run("audioset", audioset_raw, out, variant="unbalanced")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert task.name == "audioset_2m"
    assert sorted(task.split_labels("train")) == sorted(
        ["Y--PJHxphWEs.wav", "YabcdEFGH123.wav", "YYabcdEFGH12.wav", "Yunbal_00001.wav"]
    )
    assert manifest["missing"]["train"] == ["gone0000000", "gone0000001"]
    assert manifest["coverage"]["train"]["fraction"] == pytest.approx(4 / 6, abs=1e-6)


def test_min_found_stops_only_below_the_fraction(audioset_raw, tmp_path):
    with pytest.raises(ValueError, match=r"train: 3 of 4 clips \(75.0%\).*--min-found 0.8"):
        run(
            "audioset", audioset_raw, tmp_path / "a", variant="balanced", options={"min_found": 0.8}
        )
    assert not (tmp_path / "a.partial").exists()
    run("audioset", audioset_raw, tmp_path / "b", variant="balanced", options={"min_found": 0.6})
    assert_valid(tmp_path / "b")
    with pytest.raises(ValueError, match="esc50 takes no option min_found"):
        run("esc50", audioset_raw, tmp_path / "c", options={"min_found": 0.5})


def test_corrupt_audio_stops_or_is_skipped(tmp_path):
    raw = build_audioset(tmp_path / "raw", corrupt=True)
    with pytest.raises(BadInputError, match=r"eval-000002\.wav: cannot convert"):
        run("audioset", raw, tmp_path / "a", variant="balanced")
    manifest = run("audioset", raw, tmp_path / "b", variant="balanced", skip_bad=True)
    assert_valid(tmp_path / "b")
    assert [Path(s["source"]).name for s in manifest["skipped"]] == ["eval-000002.wav"] * 2
    assert sorted(TaskFolder.open(tmp_path / "b").split_labels("test")) == ["Yeval-000001.wav"]


def test_unknown_label_id_names_the_line(tmp_path):
    raw = build_audioset(tmp_path / "raw", unknown_label=True)
    with pytest.raises(BadInputError, match=r"balanced_train_segments.csv:5: unknown label id"):
        run("audioset", raw, tmp_path / "a", variant="balanced")
    manifest = run("audioset", raw, tmp_path / "b", variant="balanced", skip_bad=True)
    assert "/m/not_a_class" in manifest["skipped"][0]["reason"]
    assert "YabcdEFGH123.wav" not in TaskFolder.open(tmp_path / "b").split_labels("train")


def test_several_files_for_one_id_are_bad_input(audioset_raw, tmp_path):
    write_tone(audioset_raw / "audio" / "copy" / "--PJHxphWEs.wav", 16000, 10.0)
    with pytest.raises(BadInputError, match="several audio files carry YouTube id --PJHxphWEs"):
        run("audioset", audioset_raw, tmp_path / "a", variant="balanced")


def test_youtube_ids_in_file_names():
    assert youtube_ids("--PJHxphWEs") == ["--PJHxphWEs"]
    assert youtube_ids("Y--PJHxphWEs") == ["--PJHxphWEs"]
    assert youtube_ids("--PJHxphWEs_30.000_40.000") == ["--PJHxphWEs"]
    assert youtube_ids("--PJHxphWEs_30000") == ["--PJHxphWEs"]
    assert youtube_ids("YabcdEFGH12") == ["YabcdEFGH12"]  # 11 characters: the Y is the id's
    assert youtube_ids("YYabcdEFGH12_0_10") == ["YabcdEFGH12"]
    assert youtube_ids("notes") == [] and youtube_ids("--PJHxphWEs.backup") == []


# --- AS-strong ------------------------------------------------------------------------------
STRONG_NAMES = [("/m/09x0r", "Speech"), ("/m/0k4j", "Car"), ("/m/04rlf", "Music")]
STRONG_ROWS = {
    "audioset_train_strong.tsv": [
        # two overlapping Speech events (merged), one touching them (kept), Car overlapping
        ("strongtrn01_30000", 0.5, 2.0, "/m/09x0r"),
        ("strongtrn01_30000", 1.5, 3.0, "/m/09x0r"),
        ("strongtrn01_30000", 3.0, 4.0, "/m/09x0r"),
        ("strongtrn01_30000", 1.0, 12.0, "/m/0k4j"),  # ends after the clip: cut at 10 s
        ("strongtrn02_0", 0.0, 1.0, "/m/0k4j"),
        ("strongtrn02_0", 2.0, 3.0, "/m/04rlf"),  # Music only occurs in train: clip dropped
        ("strongtrn03_10000", 0.0, 9.0, "/m/09x0r"),  # audio gone
    ],
    "audioset_eval_strong.tsv": [
        ("strongevl01_20000", 4.0, 5.0, "/m/0k4j"),
        ("strongevl01_20000", 0.25, 1.0, "/m/09x0r"),
    ],
}


def build_strong(raw: Path, unknown_label: bool = False) -> Path:
    write_text(
        raw / "meta" / "mid_to_display_name.tsv",
        "".join(f"{mid}\t{name}\n" for mid, name in STRONG_NAMES),
    )
    for table, rows in STRONG_ROWS.items():
        lines = ["segment_id\tstart_time_seconds\tend_time_seconds\tlabel"]
        lines += [f"{seg}\t{start:.3f}\t{end:.3f}\t{mid}" for seg, start, end, mid in rows]
        if unknown_label and "eval" in table:
            lines.append("strongevl01_20000\t6.000\t7.000\t/m/unknown")
        write_text(raw / "meta" / table, "\n".join(lines) + "\n")
        for segment in sorted({row[0] for row in rows} - {"strongtrn03_10000"}):
            folder = "train" if "train" in table else "eval"
            write_tone(raw / "data" / folder / f"{segment}.wav", 32000, 10.0)
    return raw


def test_as_strong_event_folder_merges_overlaps_and_keeps_common_classes(tmp_path):
    out = tmp_path / "strong"
    manifest = run("audioset", build_strong(tmp_path / "raw"), out, variant="strong")

    assert_valid(out)
    task = TaskFolder.open(out)
    assert task.name == "audioset_strong" and task.is_event and task.primary_score == "psds1"
    assert task.labels == ["Car", "Speech"]  # Music is not in the eval clips
    assert task.split_labels("train") == {
        "strongtrn01_30000.wav": [
            Event("Speech", 500.0, 3000.0),
            Event("Car", 1000.0, 10000.0),
            Event("Speech", 3000.0, 4000.0),
        ]
    }
    expected = [Event("Speech", 250.0, 1000.0), Event("Car", 4000.0, 5000.0)]
    assert task.split_labels("test") == {"strongevl01_20000.wav": expected}
    assert task.split_labels("valid") == {"strongevl01_20000.valid.wav": expected}
    assert manifest["missing"] == {"train": ["strongtrn03_10000"]}
    assert manifest["found_counts"] == {"train segments": 3, "eval segments": 1}
    notes = " ".join(manifest["notes"])
    assert "clips with other classes dropped: train 1, eval 0" in notes
    assert "1 overlapping events of the same class merged" in notes
    assert "1 events cut at 10 s, 0 starting at or after it dropped" in notes


def test_as_strong_unknown_label_id_is_bad_input(tmp_path):
    raw = build_strong(tmp_path / "raw", unknown_label=True)
    with pytest.raises(BadInputError, match=r"audioset_eval_strong.tsv:4: unknown label id"):
        run("audioset", raw, tmp_path / "a", variant="strong")


def test_merge_overlaps_sorts_first_and_keeps_touching_events_apart():
    events = [
        Event("a", 5.0, 6.0),
        Event("a", 0.0, 2.0),
        Event("b", 1.0, 2.0),
        Event("a", 1.0, 5.0),
    ]
    assert merge_overlaps(events) == (
        [Event("a", 0.0, 5.0), Event("b", 1.0, 2.0), Event("a", 5.0, 6.0)],
        1,
    )


# --- pre-training shards --------------------------------------------------------------------
def test_pretraining_shards_stream_into_pretrain(audioset_raw, tmp_path, monkeypatch):
    monkeypatch.setattr(audioset, "SHARD_CLIPS", 2)
    out = tmp_path / "pretrain"
    manifest = run("audioset", audioset_raw, out, variant="balanced-pretraining")

    info = manifest["pretraining"]
    assert (info["clips"], info["shards"], info["data"]) == (3, 2, "shards")
    assert info["hours"] == pytest.approx(29.5 / 3600, abs=1e-3)
    assert not (out / "16000").exists() and not (out / "progress.jsonl").exists()
    names, seconds = [], 0.0
    for shard in manifest["shards"]:
        with tarfile.open(out / shard["file"]) as tar:
            for member in tar.getmembers():
                wave, rate = sf.read(io.BytesIO(tar.extractfile(member).read()))
                assert rate == 16000 and wave.ndim == 1
                names.append(member.name)
                seconds += len(wave) / rate
    assert names == sorted(["Y--PJHxphWEs.wav", "YabcdEFGH123.wav", "YYabcdEFGH12.wav"])
    assert seconds == pytest.approx(29.5, abs=0.01)  # natural lengths: 9.5 s is not padded
    assert manifest["missing"] == {"balanced": ["gone0000000"]}

    source = open_source([str(out / "shards")])
    assert source.kind == "shards" and len(source.units) == 2
    stream = iter(AudioStream(source, (16000,), seed=0))
    crops = [next(stream)["waves"][0] for _ in range(4)]
    assert all(crop.shape == (16000,) and np.isfinite(crop.numpy()).all() for crop in crops)


def test_pretraining_shards_are_reproducible(audioset_raw, tmp_path):
    first = run("audioset", audioset_raw, tmp_path / "a", variant="eval-pretraining")
    second = run("audioset", audioset_raw, tmp_path / "b", variant="eval-pretraining")
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]


def test_cli_subset_and_for_pretraining(audioset_raw, tmp_path, capsys):
    out = tmp_path / "bal"
    args = ["prepare", "audioset", str(audioset_raw), str(out), "--jobs", "1", "--allow-partial"]
    assert main([*args, "--subset", "balanced", "--for-pretraining", "--min-found", "0.5"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["variant"] == "balanced-pretraining" and manifest["pretraining"]["clips"] == 3
    capsys.readouterr()
    assert main([*args[:3], str(tmp_path / "x"), "--subset", "strong", "--for-pretraining"]) == 2
    assert "--subset 'strong' is not one of unbalanced, balanced, eval" in capsys.readouterr().err
    assert commands._pretraining_variant("audioset", None) == "unbalanced-pretraining"
    default = run("audioset", audioset_raw, tmp_path / "ub", variant="unbalanced-pretraining")
    assert default["pretraining"]["clips"] == 1  # the unbalanced list only, as the official
    with pytest.raises(SystemExit):
        main([*args, "--min-found", "1.5"])
