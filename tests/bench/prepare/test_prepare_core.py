"""Failure paths, resumption and parallel conversion of the shared converter machinery."""

from __future__ import annotations

import json
import logging

import pytest
from prepare_replicas import assert_valid, run, us8k_name

from atst_hear.bench.prepare import convert as conversion
from atst_hear.bench.prepare.core import prepare
from atst_hear.bench.prepare.plan import BadInputError, CountMismatchError
from atst_hear.tasks.folder import TaskFolder, TaskFolderError
from atst_hear.tasks.validation import validate_task_folder

ESC50_CLIP = "3-1031-A-10.wav"  # fold 3, line 7 of esc50.csv
ESC50_SOURCE = f"ESC-50-master/audio/{ESC50_CLIP}"
ESC50_CLIPS = {
    f"{fold}-10{fold}{n}-A-{target}.wav" for fold in range(1, 6) for n, target in ((0, 0), (1, 10))
}


def partial_of(out):
    return out.with_name(out.name + ".partial")


def test_missing_file_stops_with_its_name(esc50_raw, tmp_path):
    (esc50_raw / ESC50_SOURCE).unlink()
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match=f"{ESC50_CLIP}: audio file is missing.*--skip-bad"):
        run("esc50", esc50_raw, out)
    assert not out.exists() and not partial_of(out).exists()


def test_skip_bad_lists_skipped_files_in_manifest_and_summary(esc50_raw, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="atst_hear")
    (esc50_raw / ESC50_SOURCE).unlink()
    out = tmp_path / "out"
    manifest = run("esc50", esc50_raw, out, skip_bad=True)

    assert_valid(out)
    assert manifest["skipped"] == [
        {"source": str(esc50_raw / ESC50_SOURCE), "reason": "audio file is missing"}
    ]
    assert ESC50_CLIP not in TaskFolder.open(out).split_labels("fold02")
    assert len(manifest["clips"]) == 9
    printed = caplog.text
    assert "skipped 1 bad entries" in printed and f"{ESC50_CLIP}: audio file is missing" in printed


def test_corrupt_audio_stops_with_its_name_or_is_skipped(esc50_raw, tmp_path):
    (esc50_raw / ESC50_SOURCE).write_bytes(b"RIFF\x24\x00\x00\x00WAVE not really audio")
    with pytest.raises(BadInputError, match=f"{ESC50_CLIP}: cannot convert .*cannot decode"):
        run("esc50", esc50_raw, tmp_path / "strict")
    assert not (tmp_path / "strict").exists()

    manifest = run("esc50", esc50_raw, tmp_path / "lenient", skip_bad=True)
    assert [entry["source"] for entry in manifest["skipped"]] == [str(esc50_raw / ESC50_SOURCE)]
    assert_valid(tmp_path / "lenient")


def test_unknown_label_stops_with_file_and_line(esc50_raw, tmp_path):
    table = esc50_raw / "ESC-50-master/meta/esc50.csv"
    table.write_text(
        table.read_text().replace(f"{ESC50_CLIP},3,10,rain", f"{ESC50_CLIP},3,10,thunder")
    )
    with pytest.raises(BadInputError, match=r"esc50\.csv:7: unknown label 'thunder'"):
        run("esc50", esc50_raw, tmp_path / "out")

    manifest = run("esc50", esc50_raw, tmp_path / "lenient", skip_bad=True)
    assert manifest["skipped"][0]["source"].endswith("esc50.csv:7")


@pytest.mark.parametrize(
    ("name", "fixture", "variant"),
    [
        ("esc50", "esc50_raw", None),
        ("us8k", "us8k_raw", None),
        ("spcv2", "spcv2_raw", "35"),
        ("spcv2", "spcv2_raw", "12"),
        ("nsynth", "nsynth_raw", "family"),
        ("nsynth", "nsynth_raw", "pitch"),
        ("fsd50k", "fsd50k_raw", None),
        ("voxceleb1", "voxceleb1_raw", None),
        ("gtzan", "gtzan_raw", "folds"),
        ("gtzan", "gtzan_raw", "filtered"),
        ("desed", "desed_raw", None),
    ],
)
def test_counts_that_differ_from_the_release_are_an_error(
    name, fixture, variant, request, tmp_path
):
    raw = request.getfixturevalue(fixture)
    out = tmp_path / "out"
    with pytest.raises(
        CountMismatchError, match=r"found \d+, the release has \d+.*--allow-partial"
    ):
        prepare(name, raw, out, jobs=1, variant=variant)
    assert not out.exists() and not partial_of(out).exists()


def _interrupt_after(monkeypatch, n_clips: int) -> list[str]:
    """Make the run stop (as on Ctrl-C) when it starts clip number n_clips + 1."""
    finished: list[str] = []
    convert = conversion.convert_clip

    def dying(clip, target, duration_s):
        if len(finished) == n_clips:
            raise KeyboardInterrupt
        finished.append(clip.name)
        return convert(clip, target, duration_s)

    monkeypatch.setattr(conversion, "convert_clip", dying)
    return finished


def _count_conversions(monkeypatch) -> list[str]:
    converted: list[str] = []
    convert = conversion.convert_clip

    def counting(clip, target, duration_s):
        converted.append(clip.name)
        return convert(clip, target, duration_s)

    monkeypatch.setattr(conversion, "convert_clip", counting)
    return converted


def test_interrupted_run_never_looks_finished_and_resumes(esc50_raw, tmp_path, monkeypatch):
    out = tmp_path / "out"
    finished = _interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run("esc50", esc50_raw, out)

    partial = partial_of(out)
    assert not out.exists() and partial.is_dir()
    assert any(p.severity == "error" for p in validate_task_folder(out))
    assert any(p.severity == "error" for p in validate_task_folder(partial))
    with pytest.raises(TaskFolderError):
        TaskFolder.open(partial)
    # a clip damaged on disk and a line torn by the crash are both redone, not trusted
    next((partial / "16000").rglob(finished[0])).write_bytes(b"damaged")
    with open(partial / "progress.jsonl", "a") as journal:
        journal.write('{"split": "fold0')

    monkeypatch.undo()
    converted = _count_conversions(monkeypatch)
    manifest = run("esc50", esc50_raw, out)

    assert sorted(converted) == sorted(ESC50_CLIPS - set(finished[1:]))
    assert_valid(out)
    assert not partial.exists() and not (out / "progress.jsonl").exists()
    assert {entry["file"] for entry in manifest["clips"]} == ESC50_CLIPS


def test_partial_folder_of_other_settings_starts_again(esc50_raw, tmp_path, monkeypatch, caplog):
    out = tmp_path / "out"
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run("esc50", esc50_raw, out)
    journal = partial_of(out) / "progress.jsonl"
    header, *records = journal.read_text().splitlines()
    signature = json.loads(header)
    signature["signature"]["converter_version"] = 0  # as if written by an older converter
    journal.write_text("\n".join([json.dumps(signature), *records]) + "\n")

    monkeypatch.undo()
    converted = _count_conversions(monkeypatch)
    run("esc50", esc50_raw, out)
    assert sorted(converted) == sorted(ESC50_CLIPS)
    assert "starting again" in caplog.text


def test_split_emptied_by_skipped_files_is_a_clear_error(us8k_raw, tmp_path):
    (us8k_raw / "UrbanSound8K/audio/fold7" / us8k_name(7)).write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"no clips left for split\(s\) fold06 \(1 bad entries"):
        run("us8k", us8k_raw, tmp_path / "out", skip_bad=True)
    assert not (tmp_path / "out").exists()


def test_foreign_partial_folder_is_left_alone(esc50_raw, tmp_path):
    out = tmp_path / "out"
    partial_of(out).mkdir()
    (partial_of(out) / "notes.txt").write_text("not ours")
    with pytest.raises(ValueError, match="not left by an interrupted"):
        run("esc50", esc50_raw, out)
    assert (partial_of(out) / "notes.txt").exists()


def test_finished_folder_is_not_redone_nor_overwritten(
    esc50_raw, us8k_raw, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="atst_hear")
    out = tmp_path / "out"
    first = run("esc50", esc50_raw, out)
    converted = _count_conversions(monkeypatch)

    assert run("esc50", esc50_raw, out) == first
    assert converted == [] and "already prepared" in caplog.text
    with pytest.raises(ValueError, match="already holds esc50"):
        run("us8k", us8k_raw, out)
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="not a task folder written by"):
        run("esc50", esc50_raw, tmp_path / "other")


def test_worker_processes_match_one_process_and_report_bad_files(us8k_raw, tmp_path):
    corrupt = us8k_raw / "UrbanSound8K/audio/fold3" / us8k_name(3)  # fold 3 keeps one clip
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVE not really audio")

    serial = run("us8k", us8k_raw, tmp_path / "serial", skip_bad=True)
    parallel = run("us8k", us8k_raw, tmp_path / "parallel", skip_bad=True, jobs=2)

    assert_valid(tmp_path / "parallel")
    assert [c["sha256"] for c in parallel["clips"]] == [c["sha256"] for c in serial["clips"]]
    assert len(parallel["clips"]) == 10
    # the decoding error raised inside a worker reaches the main process as a skipped entry
    assert [e["source"] for e in parallel["skipped"]] == [str(corrupt)]
    assert parallel["skipped"][0]["reason"].startswith("cannot convert")
