"""Miniature replicas of every raw dataset layout, built by the tests themselves.

Each replica keeps the real layout, metadata file formats, column names and split files, and
writes a handful of short tones at the dataset's native sample rate, channel count and sample
format. No dataset file is ever committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from atst_hear.bench.prepare.core import prepare
from atst_hear.tasks.validation import validate_task_folder


def write_tone(
    path: Path,
    rate: int,
    seconds: float,
    channels: int = 1,
    subtype: str = "PCM_16",
    file_format: str | None = None,
    freq: float = 440.0,
) -> Path:
    t = np.arange(round(rate * seconds)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    data = (
        wave if channels == 1 else np.stack([wave * (c + 1) / channels for c in range(channels)], 1)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype=subtype, format=file_format)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(name: str, raw: Path, out: Path, **options):
    """Convert a replica: one process, and --allow-partial since replicas are tiny subsets."""
    return prepare(name, raw, out, jobs=options.pop("jobs", 1), allow_partial=True, **options)


def assert_valid(task_dir: Path) -> None:
    errors = [p for p in validate_task_folder(task_dir) if p.severity == "error"]
    assert not errors, errors


def wav_shape(path: Path) -> tuple[int, int, int]:
    info = sf.info(str(path))
    return info.samplerate, info.frames, info.channels


# --- ESC-50 ---------------------------------------------------------------------------------
ESC50_CLASSES = ((0, "dog"), (10, "rain"))


def build_esc50(raw: Path) -> Path:
    root = raw / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for n, (target, category) in enumerate(ESC50_CLASSES):
            name = f"{fold}-10{fold}{n}-A-{target}.wav"
            seconds = 4.5 if (fold, category) == (1, "rain") else 5.0  # one short clip to pad
            write_tone(root / "audio" / name, 44100, seconds, freq=300 + 50 * n)
            rows.append(f"{name},{fold},{target},{category},True,10{fold}{n},A")
    write_text(root / "meta" / "esc50.csv", "\n".join(rows) + "\n")
    return raw


# --- UrbanSound8K ---------------------------------------------------------------------------
# (fold, class id, sample rate, channels, subtype, seconds): the real files vary like this
US8K_ROWS = (
    (1, 8, 44100, 2, "PCM_24", 4.0),
    (2, 3, 48000, 1, "PCM_16", 2.5),
    (3, 8, 22050, 1, "PCM_U8", 4.0),
    (3, 3, 44100, 2, "PCM_16", 3.0),
    (4, 3, 96000, 2, "FLOAT", 1.0),
    (5, 8, 11025, 1, "PCM_16", 3.2),
    (6, 3, 16000, 1, "PCM_16", 4.0),
    (7, 8, 8000, 1, "PCM_U8", 0.7),
    (8, 3, 44100, 1, "PCM_32", 4.0),
    (9, 8, 32000, 2, "PCM_16", 2.0),
    (10, 3, 24000, 1, "PCM_24", 4.0),
)
US8K_CLASSES = {3: "dog_bark", 8: "siren"}


def us8k_name(row: int) -> str:
    """``[fsID]-[classID]-[occurrenceID]-[sliceID].wav`` of row number ``row``."""
    fold, class_id = US8K_ROWS[row][:2]
    return f"{100000 + fold}-{class_id}-0-{row}.wav"


def build_us8k(raw: Path) -> Path:
    root = raw / "UrbanSound8K"
    lines = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for row, (fold, class_id, rate, channels, subtype, seconds) in enumerate(US8K_ROWS):
        name = us8k_name(row)
        write_tone(root / "audio" / f"fold{fold}" / name, rate, seconds, channels, subtype)
        label = US8K_CLASSES[class_id]
        lines.append(f"{name},{100000 + fold},0.5,{0.5 + seconds},1,{fold},{class_id},{label}")
    write_text(root / "metadata" / "UrbanSound8K.csv", "\n".join(lines) + "\n")
    return raw


# --- Speech Commands V2 ---------------------------------------------------------------------
SPC_FILES = {  # relpath: list it is in (None = neither)
    "yes/0a7c2a8d_nohash_0.wav": None,
    "yes/0b09edd3_nohash_1.wav": "validation",
    "yes/0c40e715_nohash_0.wav": "testing",
    "bed/1a073312_nohash_0.wav": None,
    "bed/1b4c9b89_nohash_0.wav": "testing",
    "happy/2aca1e72_nohash_0.wav": "validation",
    "happy/2b5e346d_nohash_2.wav": None,
}
SPC_TEST_SET = (
    "yes/0d2bcf9d_nohash_0.wav",
    "_silence_/silence_0.wav",
    "_unknown_/bird_0a9f9af7.wav",
)


def build_spcv2(raw: Path) -> Path:
    root = raw / "speech_commands_v0.02"
    for n, relpath in enumerate(SPC_FILES):
        seconds = 0.8 if relpath.startswith("happy/2b") else 1.0  # some real clips are short
        write_tone(root / relpath, 16000, seconds, freq=200 + 40 * n)
    for list_name in ("validation", "testing"):
        entries = [relpath for relpath, where in SPC_FILES.items() if where == list_name]
        write_text(root / f"{list_name}_list.txt", "\n".join(entries) + "\n")
    write_tone(root / "_background_noise_" / "running_tap.wav", 16000, 2.5)  # 3 slices
    write_tone(root / "_background_noise_" / "white_noise.wav", 16000, 2.0)  # 2 slices
    write_text(root / "_background_noise_" / "README.md", "background noise\n")
    write_text(root / "README.md", "Speech Commands\n")
    for relpath in SPC_TEST_SET:
        write_tone(root / "speech_commands_test_set_v0.02" / relpath, 16000, 1.0)
    return raw


# --- NSynth ---------------------------------------------------------------------------------
NSYNTH_NOTES = {  # split: [(note_str, family, pitch)]
    "train": [
        ("bass_synthetic_033-022-050", "bass", 22),
        ("guitar_acoustic_010-060-100", "guitar", 60),
        ("bass_electronic_018-009-025", "bass", 9),  # below MIDI 21: not in the pitch task
    ],
    "valid": [("keyboard_electronic_001-108-075", "keyboard", 108)],
    "test": [("vocal_synthetic_003-061-127", "vocal", 61)],
}
NSYNTH_FAMILIES = {"bass": 0, "guitar": 3, "keyboard": 4, "vocal": 10}


def build_nsynth(raw: Path) -> Path:
    for split, notes in NSYNTH_NOTES.items():
        folder = raw / f"nsynth-{split}"
        examples = {}
        for note, family, pitch in notes:
            write_tone(
                folder / "audio" / f"{note}.wav", 16000, 4.0, freq=440 * 2 ** ((pitch - 69) / 12)
            )
            source = "synthetic" if "synthetic" in note else "acoustic"
            examples[note] = {
                "note": len(examples),
                "sample_rate": 16000,
                "pitch": pitch,
                "instrument_source": 2,
                "instrument_family_str": family,
                "instrument_str": note.rsplit("-", 2)[0],
                "note_str": note,
                "instrument_family": NSYNTH_FAMILIES[family],
                "velocity": int(note.rsplit("-", 1)[1]),
                "qualities": [0] * 10,
                "instrument": 1,
                "instrument_source_str": source,
                "qualities_str": [],
            }
        write_text(folder / "examples.json", json.dumps(examples, indent=4))
    return raw


# --- FSD50K ---------------------------------------------------------------------------------
FSD50K_VOCABULARY = (
    ("Bark", "/m/05tny_"),
    ("Dog", "/m/0bt9lr"),
    ("Domestic_animals_and_pets", "/m/068hy"),
    ("Speech", "/m/09x0r"),
)
FSD50K_DEV = (  # fname, labels, split
    (64760, "Bark,Dog,Domestic_animals_and_pets", "train"),
    (16399, "Speech", "train"),
    (21288, "Speech,Dog,Domestic_animals_and_pets", "val"),
)
FSD50K_EVAL = ((37199, "Bark,Dog"), (175151, "Speech"))


def build_fsd50k(raw: Path) -> Path:
    mids = dict(FSD50K_VOCABULARY)
    truth = raw / "FSD50K.ground_truth"
    write_text(
        truth / "vocabulary.csv",
        "".join(f"{i},{label},{mid}\n" for i, (label, mid) in enumerate(FSD50K_VOCABULARY)),
    )
    dev = ["fname,labels,mids,split"]
    for n, (fname, labels, split) in enumerate(FSD50K_DEV):
        codes = ",".join(mids[label] for label in labels.split(","))
        dev.append(f'{fname},"{labels}","{codes}",{split}')
        write_tone(raw / "FSD50K.dev_audio" / f"{fname}.wav", 44100, 0.4 + 1.3 * n)
    write_text(truth / "dev.csv", "\n".join(dev) + "\n")
    rows = ["fname,labels,mids"]
    for n, (fname, labels) in enumerate(FSD50K_EVAL):
        codes = ",".join(mids[label] for label in labels.split(","))
        rows.append(f'{fname},"{labels}","{codes}"')
        write_tone(raw / "FSD50K.eval_audio" / f"{fname}.wav", 44100, 2.0 + n)
    write_text(truth / "eval.csv", "\n".join(rows) + "\n")
    return raw


# --- VoxCeleb1 ------------------------------------------------------------------------------
VOXCELEB1_SPLIT = (
    ("1", "id10001/1zcIwhmdeo4/00001.wav"),
    ("1", "id10001/7gWzIy6yIIk/00002.wav"),
    ("2", "id10001/Y8hIVOBuels/00003.wav"),
    ("3", "id10001/Y8hIVOBuels/00004.wav"),
    ("1", "id10002/C7k7C-PDvAA/00001.wav"),
    ("2", "id10002/Lgw5U_bSVhI/00002.wav"),
    ("3", "id10002/xTV-jFAUKcw/00003.wav"),
)


def build_voxceleb1(raw: Path) -> Path:
    for n, (_, relpath) in enumerate(VOXCELEB1_SPLIT):
        write_tone(raw / "wav" / relpath, 16000, 1.5 + 0.5 * n)
    write_text(raw / "iden_split.txt", "".join(f"{c} {p}\n" for c, p in VOXCELEB1_SPLIT))
    return raw


# --- GTZAN ----------------------------------------------------------------------------------
def build_gtzan(raw: Path, stems: list[str]) -> Path:
    """The original archive: ``genres/<genre>/<genre>.000NN.au`` (22.05 kHz, 16-bit AU)."""
    for n, stem in enumerate(stems):
        seconds = 29.98 if n % 2 else 30.0  # real excerpts are 30 s give or take a few samples
        path = raw / "genres" / stem.split(".")[0] / f"{stem}.au"
        write_tone(path, 22050, seconds, file_format="AU", freq=220 + 20 * n)
    return raw


GTZAN_FOLD_STEMS = [f"{'blues' if k % 2 else 'jazz'}.{10 * k + k % 3:05d}" for k in range(10)]


# --- DESED ----------------------------------------------------------------------------------
DESED_SYNTH_TRAIN_TSV = """filename\tonset\toffset\tevent_label
0.wav\t0.512\t3.105\tSpeech
0.wav\t2.000\t10.450\tVacuum_cleaner
1.wav\t4.250\t5.001\tDog
1.wav\t10.000\t10.000\tDog
"""  # 2.wav holds no target event, so it is not in the table
DESED_SYNTH_VALID_TSV = """filename\tonset\toffset\tevent_label
0.wav\t1.000\t2.500\tCat
1.wav\t0.000\t10.000\tFrying
"""
DESED_VALIDATION_TSV = """filename\tonset\toffset\tevent_label
Y00pbt6aJV8Y_350.000_360.000.wav\t0.000\t9.971\tVacuum_cleaner
Y02QtE8ZJZ4s_0.000_7.500.wav\t1.282\t2.136\tDishes
Y02QtE8ZJZ4s_0.000_7.500.wav\t3.012\t4.000\tSpeech
Y0AiCfJ1mT_4_30.000_40.000.wav\t\t\t
"""
DESED_WEAK = [f"Y{n:02d}weakclip_{10 * n}.000_{10 * n + 10}.000.wav" for n in range(10)]


def build_desed(raw: Path) -> Path:
    root = raw / "dataset"
    for subset, names in (("train", 3), ("validation", 2)):
        folder = root / "audio" / subset / f"synthetic21_{subset}" / "soundscapes"
        for n in range(names):
            write_tone(folder / f"{n}.wav", 44100, 10.0, freq=300 + 30 * n)
            write_text(folder / f"{n}.jams", "{}")  # scaper leaves these next to the audio
            write_text(folder / f"{n}.txt", "")
    write_text(root / "metadata/train/synthetic21_train/soundscapes.tsv", DESED_SYNTH_TRAIN_TSV)
    write_text(
        root / "metadata/validation/synthetic21_validation/soundscapes.tsv", DESED_SYNTH_VALID_TSV
    )
    for name in sorted({line.split("\t")[0] for line in DESED_VALIDATION_TSV.splitlines()[1:]}):
        seconds = 7.5 if "_7.500" in name else 10.0  # some real recordings are shorter
        write_tone(root / "audio/validation/validation" / name, 44100, seconds)
    write_text(root / "metadata/validation/validation.tsv", DESED_VALIDATION_TSV)
    weak_rows = ["filename\tevent_labels"]
    for n, name in enumerate(DESED_WEAK):
        write_tone(root / "audio/train/weak" / name, 44100, 2.0)
        weak_rows.append(f"{name}\t{'Speech,Dog' if n % 3 == 0 else 'Blender'}")
    write_text(root / "metadata/train/weak.tsv", "\n".join(weak_rows) + "\n")
    return raw
