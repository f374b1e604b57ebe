"""The demo suite generator: valid HEAR folders of the advertised shapes, deterministic, resumable.

The suite is generated once per session at a reduced scale; the full-size checks (size, time,
determinism) are marked slow.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from atst_hear.bench.demo.suite import MANIFEST_FILE, STAMP_KEY, generate_suite
from atst_hear.bench.demo.tasks import EVENT_CLASSES, PITCHES, SOUNDS, TAGS, TASKS, WORDS
from atst_hear.bench.prepare import convert as conversion
from atst_hear.bench.prepare.plan import Clip, Synthesis
from atst_hear.cli import main
from atst_hear.tasks.folder import TaskFolder
from atst_hear.tasks.validation import validate_task_folder

TRAINVALTEST = ["train", "valid", "test"]
FOLDS = [f"fold{i:02d}" for i in range(5)]
FAMILIES = ["brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string"]
SPEAKERS = [f"speaker{i:02d}" for i in range(1, 9)]
# task -> (embedding type, prediction type, split mode, splits, primary score, vocabulary)
ADVERTISED = {
    "demo_sounds": ("scene", "multiclass", "presplit_kfold", FOLDS, "top1_acc", sorted(SOUNDS)),
    "demo_words": ("scene", "multiclass", "trainvaltest", TRAINVALTEST, "top1_acc", sorted(WORDS)),
    "demo_pitch": (
        "scene",
        "multiclass",
        "trainvaltest",
        TRAINVALTEST,
        "pitch_acc",
        [str(p) for p in range(48, 72)],
    ),
    "demo_instruments": ("scene", "multiclass", "trainvaltest", TRAINVALTEST, "top1_acc", FAMILIES),
    "demo_tags": ("scene", "multilabel", "trainvaltest", TRAINVALTEST, "mAP", sorted(TAGS)),
    "demo_speakers": ("scene", "multiclass", "trainvaltest", TRAINVALTEST, "top1_acc", SPEAKERS),
    "demo_events": (
        "event",
        "multilabel",
        "trainvaltest",
        TRAINVALTEST,
        "event_onset_200ms_fms",
        sorted(EVENT_CLASSES),
    ),
}


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_every_advertised_task_is_generated(suite, scale):
    assert set(ADVERTISED) == set(TASKS)
    manifest = json.loads((suite / MANIFEST_FILE).read_text())
    assert [t["name"] for t in manifest["tasks"]] == list(TASKS)
    assert (manifest["seed"], manifest["scale"]) == (0, scale)


@pytest.mark.parametrize("name", list(ADVERTISED))
def test_task_folder_passes_the_validator_without_warnings(suite, name):
    assert [str(p) for p in validate_task_folder(suite / name)] == []


@pytest.mark.parametrize("name", list(ADVERTISED))
def test_task_has_the_advertised_shape_and_classes(suite, name, scale):
    task = TaskFolder.open(suite / name)
    embedding, prediction, mode, splits, primary, vocabulary = ADVERTISED[name]
    assert (task.embedding_type, task.prediction_type, task.split_mode) == (
        embedding,
        prediction,
        mode,
    )
    assert task.splits == splits
    assert task.primary_score == primary
    assert task.labels == vocabulary
    assert task.metadata[STAMP_KEY] == {"version": 1, "seed": 0, "scale": scale}
    for split in task.splits:
        items = [item for labels in task.split_labels(split).values() for item in labels]
        used = {item.label if task.is_event else item for item in items}
        assert used == set(vocabulary), f"{name}/{split} lacks {set(vocabulary) - used}"


@pytest.mark.parametrize("name", [n for n, shape in ADVERTISED.items() if shape[1] == "multiclass"])
def test_multiclass_splits_are_balanced(suite, name):
    task = TaskFolder.open(suite / name)
    for split in task.splits:
        counts = Counter(labels[0] for labels in task.split_labels(split).values())
        assert max(counts.values()) == min(counts.values()), f"{name}/{split}: {counts}"


def test_file_names_do_not_reveal_labels(suite):
    task = TaskFolder.open(suite / "demo_sounds")
    names = [name for split in task.splits for name in task.split_labels(split)]
    assert all(name[:-4].isdigit() for name in names)
    assert len(set(names)) == len(names)


def test_pitch_vocabulary_is_consecutive_midi_for_chroma(suite):
    task = TaskFolder.open(suite / "demo_pitch")
    assert [int(label) for label in task.labels] == list(PITCHES)
    assert task.evaluation == ["pitch_acc", "chroma_acc"]


def test_tags_have_one_to_three_labels(suite):
    task = TaskFolder.open(suite / "demo_tags")
    for split in task.splits:
        sizes = {len(labels) for labels in task.split_labels(split).values()}
        assert sizes <= {1, 2, 3}


def test_events_are_strong_labels_in_ms_with_empty_files(suite):
    task = TaskFolder.open(suite / "demo_events")
    assert task.sample_duration == 10.0
    assert "psds1" in task.evaluation
    for split in task.splits:
        files = task.split_labels(split)
        assert any(events == [] for events in files.values()), f"{split} has no empty file"
        assert sum(len(events) for events in files.values()) >= len(files)
        for events in files.values():
            assert all(0 <= e.start < e.end <= 10_000 and e.end - e.start >= 499 for e in events)
            for label in {e.label for e in events}:
                spans = sorted((e.start, e.end) for e in events if e.label == label)
                assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "same-class overlap"


def test_events_have_weak_labels_like_the_desed_converter(suite):
    folder = suite / "demo_events"
    task = TaskFolder.open(folder)
    weak_splits = task.metadata["weak_splits"]
    assert weak_splits == ["weak_train", "weak_valid"]
    weak = json.loads((folder / task.metadata["weak_label_file"]).read_text())
    assert sorted(weak) == weak_splits
    strong_files = {name for split in task.splits for name in task.split_labels(split)}
    for split in weak_splits:
        assert weak[split], f"{split} is empty"
        for name, labels in weak[split].items():
            assert task.audio_path(split, name).is_file()
            assert name not in strong_files
            assert labels and labels == sorted(set(labels)) and set(labels) <= set(task.labels)


def test_rerun_keeps_finished_tasks_untouched(suite, scale):
    before = checksums(suite)
    summaries = generate_suite(suite, seed=0, scale=scale, progress=False)
    assert not any(s.generated for s in summaries)
    assert checksums(suite) == before


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(suite, tmp_path, scale):
    names = ["demo_sounds", "demo_events"]
    generate_suite(tmp_path / "same", seed=0, scale=scale, tasks=names, progress=False)
    generate_suite(tmp_path / "other", seed=1, scale=scale, tasks=names, progress=False)
    for name in names:
        reference = checksums(suite / name)
        assert checksums(tmp_path / "same" / name) == reference
        other = checksums(tmp_path / "other" / name)
        wavs = [path for path in reference if path.endswith(".wav")]
        assert all(other.get(path) != reference[path] for path in wavs)


def _watch_renders(monkeypatch, stop_after: int | None = None) -> list[str]:
    """The names of the clips rendered from now on; with ``stop_after``, stop (as on Ctrl-C)
    when clip number ``stop_after + 1`` is to be rendered."""
    rendered: list[str] = []
    convert = conversion.convert_clip

    def watched(clip, target, duration_s):
        if len(rendered) == stop_after:
            raise KeyboardInterrupt
        rendered.append(clip.name)
        return convert(clip, target, duration_s)

    monkeypatch.setattr(conversion, "convert_clip", watched)
    return rendered


def test_interrupted_generation_resumes_clip_by_clip_to_the_same_bytes(
    suite, tmp_path, scale, monkeypatch
):
    first = _watch_renders(monkeypatch, stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        generate_suite(tmp_path, scale=scale, tasks=["demo_sounds"], progress=False)
    assert not (tmp_path / "demo_sounds").exists()
    assert (tmp_path / ".demo_sounds.partial" / "progress.jsonl").is_file()

    monkeypatch.undo()
    second = _watch_renders(monkeypatch)
    generate_suite(tmp_path, scale=scale, tasks=["demo_sounds"], progress=False)
    expected = checksums(suite / "demo_sounds")
    assert len(second) == sum(p.endswith(".wav") for p in expected) - 5
    assert not set(first) & set(second)
    assert checksums(tmp_path / "demo_sounds") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_sounds", MANIFEST_FILE]


@pytest.mark.parametrize("wave", [np.zeros(100), np.full(16000, np.nan)])
def test_a_bad_synthetic_waveform_is_a_generator_error(tmp_path, wave):
    clip = Clip("train", "0.wav", Synthesis(lambda rng: wave, np.random.SeedSequence(0)))
    with pytest.raises(RuntimeError, match="train/0.wav: generator produced a bad waveform"):
        conversion.convert_clip(clip, tmp_path / "0.wav", 1.0)
    assert not (tmp_path / "0.wav").exists()


def test_other_settings_replace_a_demo_folder_and_leftovers_are_cleared(tmp_path, scale):
    generate_suite(tmp_path, seed=0, scale=scale, tasks=["demo_instruments"], progress=False)
    (tmp_path / ".demo_instruments.partial" / "junk").mkdir(parents=True)
    [summary] = generate_suite(
        tmp_path, seed=3, scale=scale, tasks=["demo_instruments"], progress=False
    )
    assert summary.generated
    assert TaskFolder.open(tmp_path / "demo_instruments").metadata[STAMP_KEY]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_instruments", MANIFEST_FILE]


def test_a_folder_not_written_by_the_generator_is_never_replaced(tmp_path, scale):
    foreign = tmp_path / "demo_tags"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="demo_tags.*not written by the demo generator"):
        generate_suite(tmp_path, scale=scale, tasks=["demo_tags"], progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"scale": 0.0}, "scale must be in"),
        ({"tasks": ["demo_nope"]}, "unknown demo tasks"),
    ],
)
def test_bad_settings_are_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        generate_suite(tmp_path, progress=False, **options)


def test_cli_generates_and_reports(tmp_path, capsys, scale):
    out = tmp_path / "suite"
    args = ["demo-tasks", str(out), "--seed", "2", "--scale", str(scale), "--tasks", "demo_pitch"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "demo_pitch" in printed and "generated" in printed
    assert validate_task_folder(out / "demo_pitch") == []
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_reports_bad_scale_without_traceback(tmp_path, capsys):
    assert main(["demo-tasks", str(tmp_path), "--scale", "-1"]) == 2
    assert "scale must be in" in capsys.readouterr().err


@pytest.mark.slow
def test_full_suite_is_small_fast_and_deterministic(tmp_path):
    started = time.perf_counter()
    summaries = generate_suite(tmp_path / "a", seed=0, progress=False)
    elapsed = time.perf_counter() - started
    total = sum(s.bytes for s in summaries)
    assert total < 60e6, f"suite takes {total / 1e6:.1f} MB"
    assert elapsed < 120, f"suite took {elapsed:.0f} s"
    clips = {s.name: s.clips for s in summaries}
    assert all(100 <= n <= 300 for name, n in clips.items() if name != "demo_events")
    assert 40 <= clips["demo_events"] <= 80
    generate_suite(tmp_path / "b", seed=0, progress=False)
    assert checksums(tmp_path / "a") == checksums(tmp_path / "b")
