"""Speech Commands V2 (v0.02): one-second utterances of 35 words.

Raw layout (``speech_commands_v0.02.tar.gz`` extracted into one folder): ``<word>/*.wav``
(16 kHz mono), ``validation_list.txt``, ``testing_list.txt`` (``word/file.wav`` per line) and
``_background_noise_/*.wav``.

Variant ``35`` (the ATST paper's SPC-V2): label = word; test = ``testing_list.txt``, valid =
``validation_list.txt``, train = every other clip.

Variant ``12`` follows HEAR's ``speech_commands`` task: the 10 command words, ``_unknown_`` for
the other 25 and ``_silence_`` for 1 s slices of the background noise files (every 0.5 s; the
``running_tap`` slices go to valid, the others to train). Valid = ``validation_list.txt``,
train = the clips in neither list, and test = the separate test set
(``speech_commands_test_set_v0.02.tar.gz``, extracted into a folder of that name inside
RAW_DIR), whose folders already are the 12 labels. The clips of ``testing_list.txt`` are not
used, as in HEAR.
"""

from __future__ import annotations

from pathlib import Path

from ...audio import AudioError, audio_info
from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, read_lines

VERSION = 1
WORDS = (
    *("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward"),
    *("four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on"),
    *("one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up"),
    *("visual", "wow", "yes", "zero"),
)
COMMANDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND_DIR = "_background_noise_"
TEST_SET_DIR = "speech_commands_test_set_v0.02"
VALIDATION_NOISE = "running_tap"  # the background file whose slices are validation silence
RELEASE_COUNTS = {
    "clips": 105829,
    "words": 35,
    "clips in validation_list.txt": 9981,
    "clips in testing_list.txt": 11005,
    "clips in neither list": 84843,
}
TEST_SET_COUNTS = {"test set clips": 4890, "test set labels": 12, "background noise files": 6}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, "validation_list.txt", ["speech_commands_v0.02"])
    files = _word_files(root, bad)
    validation = _listed(root / "validation_list.txt", files)
    testing = _listed(root / "testing_list.txt", files)
    found = {
        "clips": len(files),
        "words": len({relpath.split("/")[0] for relpath in files}),
        "clips in validation_list.txt": len(validation),
        "clips in testing_list.txt": len(testing),
        "clips in neither list": len(set(files) - set(validation) - set(testing)),
    }
    # a listed file that is missing on disk still becomes a clip: the missing-file check names it
    sources = {**files, **validation, **testing}
    notes = []
    if variant == "35":
        clips = [
            _word_clip(
                relpath, source, _split_35(relpath, validation, testing), relpath.split("/")[0]
            )
            for relpath, source in sorted(sources.items())
        ]
        vocabulary, known, version = sorted(WORDS), RELEASE_COUNTS, "Speech Commands v0.02"
    else:
        clips = [
            _word_clip(
                relpath,
                source,
                "valid" if relpath in validation else "train",
                _command_or_unknown(relpath.split("/")[0]),
            )
            for relpath, source in sorted(sources.items())
            if relpath not in testing
        ]
        notes.append(
            f"the {len(testing)} clips of testing_list.txt are not used: the test split is the "
            "separate v0.02 test set, as in HEAR"
        )
        silence, n_background = _silence_clips(root / BACKGROUND_DIR, bad)
        test_clips, n_test_labels = _test_set_clips(raw_dir, root, bad)
        clips += silence + test_clips
        found.update(
            {
                "test set clips": len(test_clips),
                "test set labels": n_test_labels,
                "background noise files": n_background,
            }
        )
        vocabulary = sorted((*COMMANDS, SILENCE, UNKNOWN))
        known = {**RELEASE_COUNTS, **TEST_SET_COUNTS}
        version = "Speech Commands v0.02 with speech_commands_test_set_v0.02"
    metadata = task_metadata(
        f"spcv2_{variant}",
        "scene",
        "multiclass",
        "trainvaltest",
        ["train", "valid", "test"],
        1.0,
        ["top1_acc"],
    )
    return TaskPlan(
        dataset="spcv2",
        dataset_version=version,
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=vocabulary,
        clips=clips,
        found_counts=found,
        known_counts=known,
        notes=notes,
    )


def _word_files(root: Path, bad: BadInputs) -> dict[str, Path]:
    """``{"word/file.wav": path}`` for every utterance in the word folders."""
    files = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith("_") or folder.name == TEST_SET_DIR:
            continue
        if folder.name not in WORDS:
            bad.report(folder, f"unknown label: {folder.name!r} is not one of the 35 words")
            continue
        for path in sorted(folder.glob("*.wav")):
            files[f"{folder.name}/{path.name}"] = path
    return files


def _listed(list_file: Path, files: dict[str, Path]) -> dict[str, Path]:
    """The entries of a split list whose word is known, mapped to their (maybe missing) file."""
    root = list_file.parent
    listed = {}
    for _, entry in read_lines(list_file):
        if entry in files or entry.split("/")[0] in WORDS:
            listed[entry] = files.get(entry, root / entry)
    return listed


def _split_35(relpath: str, validation: dict[str, Path], testing: dict[str, Path]) -> str:
    if relpath in testing:
        return "test"
    return "valid" if relpath in validation else "train"


def _word_clip(relpath: str, source: Path, split: str, label: str) -> Clip:
    word = relpath.split("/")[0]
    return Clip(split=split, name=f"{word}_{source.name}", source=source, labels=(label,))


def _command_or_unknown(word: str) -> str:
    return word if word in COMMANDS else UNKNOWN


def _silence_clips(background_dir: Path, bad: BadInputs) -> tuple[list[Clip], int]:
    """One-second slices every half second of each background noise file (HEAR's recipe)."""
    if not background_dir.is_dir():
        raise FileNotFoundError(
            f"{background_dir}: background noise folder is missing; variant 12 cuts its "
            "_silence_ clips from it"
        )
    clips, n_files = [], 0
    for path in sorted(background_dir.glob("*.wav")):
        n_files += 1
        try:
            rate, frames, _ = audio_info(path)
        except AudioError as err:
            bad.report(path, f"cannot read background noise ({err})")
            continue
        split = "valid" if path.stem == VALIDATION_NOISE else "train"
        for start in range(0, frames - rate, rate // 2):
            clips.append(
                Clip(
                    split=split,
                    name=f"{SILENCE}_{path.stem}-{start}.wav",
                    source=path,
                    labels=(SILENCE,),
                    offset_s=start / rate,
                    length_s=1.0,
                )
            )
    return clips, n_files


def _test_set_clips(raw_dir: Path, root: Path, bad: BadInputs) -> tuple[list[Clip], int]:
    test_root = next(
        (p / TEST_SET_DIR for p in (root, raw_dir) if (p / TEST_SET_DIR).is_dir()), None
    )
    if test_root is None:
        raise FileNotFoundError(
            f"{root / TEST_SET_DIR}: variant 12 takes its test split from the separate test set; "
            f"extract speech_commands_test_set_v0.02.tar.gz into that folder"
        )
    labels = {*COMMANDS, SILENCE, UNKNOWN}
    clips, found_labels = [], set()
    for folder in sorted(p for p in test_root.iterdir() if p.is_dir()):
        if folder.name not in labels:
            bad.report(
                folder, f"unknown label: test set folder {folder.name!r} is not one of the 12"
            )
            continue
        found_labels.add(folder.name)
        for path in sorted(folder.glob("*.wav")):
            clips.append(
                Clip(
                    split="test",
                    name=f"{folder.name}_{path.name}",
                    source=path,
                    labels=(folder.name,),
                )
            )
    return clips, len(found_labels)
