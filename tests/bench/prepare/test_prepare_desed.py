"""DESED replica -> event task folder (ms, clipped to 10 s, [] for files without events)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from prepare_replicas import DESED_WEAK, assert_valid, run, wav_shape

from atst_hear.bench.prepare.plan import BadInputError
from atst_hear.tasks.folder import Event, TaskFolder


def test_desed_event_times_in_ms_clipped_and_empty_files_listed(desed_raw, tmp_path):
    out = tmp_path / "desed"
    manifest = run("desed", desed_raw, out)

    assert_valid(out)
    task = TaskFolder.open(out)
    assert (task.embedding_type, task.prediction_type, task.sample_duration) == (
        "event",
        "multilabel",
        10.0,
    )
    assert task.primary_score == "psds1" and task.splits == ["train", "valid", "test"]
    assert len(task.labels) == 10
    assert task.split_labels("train") == {
        "synthetic21_train-0.wav": [
            Event("Speech", 512.0, 3105.0),
            Event("Vacuum_cleaner", 2000.0, 10000.0),  # 10.45 s cut at the clip's end
        ],
        # the event starting at 10 s is dropped
        "synthetic21_train-1.wav": [Event("Dog", 4250.0, 5001.0)],
        "synthetic21_train-2.wav": [],  # no target event: not in the table, still listed
    }
    assert task.split_labels("valid") == {
        "synthetic21_validation-0.wav": [Event("Cat", 1000.0, 2500.0)],
        "synthetic21_validation-1.wav": [Event("Frying", 0.0, 10000.0)],
    }
    assert task.split_labels("test") == {
        "Y00pbt6aJV8Y_350.000_360.000.wav": [Event("Vacuum_cleaner", 0.0, 9971.0)],
        "Y02QtE8ZJZ4s_0.000_7.500.wav": [
            Event("Dishes", 1282.0, 2136.0),
            Event("Speech", 3012.0, 4000.0),
        ],
        "Y0AiCfJ1mT_4_30.000_40.000.wav": [],
    }
    short = task.audio_path("test", "Y02QtE8ZJZ4s_0.000_7.500.wav")
    assert wav_shape(short) == (16000, 160000, 1)
    entry = next(c for c in manifest["clips"] if c["file"] == short.name)
    assert entry["source_duration_s"] == 7.5  # the real length, for PSDS
    assert "1 events starting at or after 10 s dropped, 1 events cut at 10 s" in manifest["notes"]


def test_desed_weak_clips_follow_the_baseline_split(desed_raw, tmp_path):
    out = tmp_path / "desed"
    run("desed", desed_raw, out)

    task = TaskFolder.open(out)
    assert task.metadata["weak_label_file"] == "weak_labels.json"
    weak = json.loads((out / "weak_labels.json").read_text())
    assert set(weak) == {"weak_train", "weak_valid"}
    # the DESED baseline's own code for the split
    table = pd.read_csv(desed_raw / "dataset/metadata/train/weak.tsv", sep="\t")
    baseline_train = set(table.sample(frac=0.9, random_state=42)["filename"])
    assert set(weak["weak_train"]) == baseline_train
    assert set(weak["weak_valid"]) == set(DESED_WEAK) - baseline_train
    assert weak["weak_train"].get(DESED_WEAK[3], weak["weak_valid"].get(DESED_WEAK[3])) == [
        "Dog",
        "Speech",
    ]
    for split, files in weak.items():
        for name in files:
            assert wav_shape(out / "16000" / split / name) == (16000, 160000, 1)


def test_desed_bad_event_row_names_table_and_line(desed_raw, tmp_path):
    table = desed_raw / "dataset/metadata/validation/synthetic21_validation/soundscapes.tsv"
    table.write_text(table.read_text().replace("1.wav\t0.000\t10.000", "1.wav\t5.000\t2.000"))
    with pytest.raises(BadInputError, match=r"soundscapes\.tsv:3: event \[5\.000, 2\.000\] s"):
        run("desed", desed_raw, tmp_path / "strict")

    manifest = run("desed", desed_raw, tmp_path / "lenient", skip_bad=True)
    assert [entry["source"] for entry in manifest["skipped"]] == [f"{table}:3"]
    valid = TaskFolder.open(tmp_path / "lenient").split_labels("valid")
    assert list(valid) == ["synthetic21_validation-0.wav"]
