"""The demo tasks: one small synthetic task per shape of the real benchmark.

A task builder draws the whole design of its task (classes, splits, speakers, event times)
from a planning generator and returns a :class:`TaskPlan` whose clips render their audio
lazily, each from a generator of its own; :mod:`.suite` writes plans to disk.

==================  ==================================  ====================================
task                shape                                mimics
==================  ==================================  ====================================
demo_sounds         scene, multiclass, 5 official folds  ESC-50 / UrbanSound8K
demo_words          scene, multiclass, train/valid/test  Speech Commands (unseen speakers)
demo_pitch          scene, multiclass, pitch scores      NSynth pitch (HEAR)
demo_instruments    scene, multiclass                    NSynth instrument family (paper)
demo_tags           scene, multilabel (mAP)              FSD50K / AudioSet
demo_speakers       scene, multiclass                    VoxCeleb1 identification
demo_events         event, strong labels, onset F1/PSDS  DESED
==================  ==================================  ====================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..taskfolder import Event
from .notes import FAMILIES, note
from .sources import sound
from .speech import Speaker, parse, utterance
from .synth import (
    SR,
    add_at,
    at_snr,
    background,
    finish,
    fit,
    log_uniform,
    n_samples,
    random_channel,
)

# a sound source: (rng, at most this many samples) -> unit-RMS waveform no longer than that
Source = Callable[[np.random.Generator, int], np.ndarray]

TRAINVALTEST = ("train", "valid", "test")
# the DESED converter's name for the clip-level labels of its weakly labelled splits
WEAK_LABEL_FILE = "weak_labels.json"
SCENE_SCORES = ("top1_acc", "mAP", "d_prime", "aucroc")
# word pairs with the same sounds in another order: an average spectrum cannot tell them apart
WORDS = ("asi", "isa", "tomu", "muto", "kela", "leka", "shano", "nosha", "pifu", "fupi")
PITCHES = tuple(range(48, 72))  # C3-B4: two octaves, so chroma_acc differs from pitch_acc
TAGS = ("alarm", "bell", "chirp_up", "engine", "knock", "rain", "speech", "wind")
EVENT_CLASSES = ("alarm", "bell", "buzz", "chirp_up", "drip", "engine", "knock", "speech")
SOUNDS = (
    "alarm",
    "bell",
    "buzz",
    "chirp_down",
    "chirp_up",
    "drip",
    "engine",
    "knock",
    "rain",
    "wind",
)


@dataclass(frozen=True)
class Clip:
    """One file of a task: where it goes, what it is labelled, how to make its audio."""

    split: str
    labels: tuple  # label strings (scene) or Events in ms (event)
    render: Callable[[np.random.Generator], np.ndarray]


@dataclass
class TaskPlan:
    name: str
    description: str
    embedding_type: str
    prediction_type: str
    split_mode: str
    splits: list[str]
    sample_duration: float
    evaluation: list[str]
    labels: list[str]  # the vocabulary, in labelvocabulary.csv order
    clips: list[Clip]  # clips of splits outside ``splits`` go to ``side_label_file``
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    side_label_file: str | None = None

    @property
    def clip_samples(self) -> int:
        return n_samples(self.sample_duration)


def scaled(count: int, scale: float, minimum: int = 1) -> int:
    """``count`` clips of the full-size suite at ``scale``, never fewer than ``minimum``."""
    return max(minimum, int(round(count * scale)))


def scene(
    rng: np.random.Generator,
    n: int,
    sources: Sequence[Source],
    active: tuple[float, float] = (0.35, 0.95),
    snr_db: tuple[float, float] = (5.0, 25.0),
) -> np.ndarray:
    """A clip of ``n`` samples: each source lasting a random share ``active`` of the clip at a
    random time, over background noise at a random SNR, through a random channel, at a random
    level. Shared by every scene task so no class can be told by duration, noise or loudness."""
    out = np.zeros(n)
    for source in sources:
        wave = source(rng, int(n * rng.uniform(*active)))
        gain = 10.0 ** (rng.uniform(-6.0, 0.0) / 20.0) if len(sources) > 1 else 1.0
        add_at(out, gain * wave, int(rng.integers(0, n - len(wave) + 1)))
    out += at_snr(1.0, rng.uniform(*snr_db)) * background(rng, n)
    return finish(rng, random_channel(rng, out))


def spoken(words: Sequence[str], speaker: Speaker) -> Source:
    """A source saying ``words`` (with short pauses between them) in ``speaker``'s voice."""

    def say(rng: np.random.Generator, max_n: int) -> np.ndarray:
        pieces = []
        for word in words:
            pieces += [
                utterance(rng, parse(word), speaker),
                np.zeros(n_samples(rng.uniform(0.05, 0.15))),
            ]
        wave = np.concatenate(pieces[:-1])
        return fit(wave, max_n) if len(wave) > max_n else wave

    return say


def played(family: str, midi: int) -> Source:
    """A note that starts the source and rings to its end; the key is held for 30-80 %."""

    def play(rng: np.random.Generator, n: int) -> np.ndarray:
        return note(rng, family, midi, n, held=int(n * rng.uniform(0.3, 0.8)))

    return play


def sounding(name: str) -> Source:
    return partial(sound, name)


def stratified(
    rng: np.random.Generator,
    per_split: dict[str, int],
    classes: Sequence[Any],
    make_clip: Callable[[str, Any], Clip],
) -> list[Clip]:
    """``per_split[split]`` clips of every class in every split, in a shuffled order."""
    clips = [
        make_clip(split, cls)
        for cls in classes
        for split, count in per_split.items()
        for _ in range(count)
    ]
    return [clips[i] for i in rng.permutation(len(clips))]


# --- the tasks ------------------------------------------------------------------------------
def sounds_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.25
    folds = [f"fold{i:02d}" for i in range(5)]
    n = n_samples(duration)

    def make(split: str, cls: str) -> Clip:
        return Clip(split, (cls,), partial(scene, n=n, sources=[sounding(cls)]))

    return TaskPlan(
        name="demo_sounds",
        description="ESC-50-like everyday sounds with 5 official folds",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="presplit_kfold",
        splits=folds,
        sample_duration=duration,
        evaluation=list(SCENE_SCORES),
        labels=list(SOUNDS),
        clips=stratified(rng, {f: scaled(4, scale) for f in folds}, SOUNDS, make),
    )


def words_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.0
    n = n_samples(duration)
    speakers_per_split = {"train": 6, "valid": 2, "test": 2}
    repeats = scaled(2, scale)
    clips = []
    for split, count in speakers_per_split.items():
        for _ in range(count):
            speaker = Speaker.random(rng)
            for word in WORDS:
                source = spoken([word], speaker)
                render = partial(scene, n=n, sources=[source], active=(1.0, 1.0))
                clips += [Clip(split, (word,), render) for _ in range(repeats)]
    return TaskPlan(
        name="demo_words",
        description="Speech Commands-like words from unseen synthetic speakers",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=list(SCENE_SCORES),
        labels=sorted(WORDS),
        clips=[clips[i] for i in rng.permutation(len(clips))],
    )


def pitch_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.0
    n = n_samples(duration)
    families = sorted(FAMILIES)

    def make(split: str, midi: int) -> Clip:
        source = played(str(rng.choice(families)), midi)
        render = partial(scene, n=n, sources=[source], active=(0.85, 1.0), snr_db=(25.0, 45.0))
        return Clip(split, (str(midi),), render)

    per_split = {"train": scaled(4, scale), "valid": scaled(2, scale), "test": scaled(2, scale)}
    return TaskPlan(
        name="demo_pitch",
        description="NSynth-like notes of 8 instrument families labelled by MIDI pitch",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=["pitch_acc", "chroma_acc"],
        labels=[str(p) for p in PITCHES],  # consecutive: chroma_acc takes the index mod 12
        clips=stratified(rng, per_split, PITCHES, make),
        extra_metadata={"pitch_range_min": PITCHES[0], "pitch_range_max": PITCHES[-1]},
    )


def instruments_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.0
    n = n_samples(duration)
    families = sorted(FAMILIES)

    def make(split: str, family: str) -> Clip:
        source = played(family, int(rng.integers(48, 77)))
        render = partial(scene, n=n, sources=[source], active=(0.85, 1.0), snr_db=(25.0, 45.0))
        return Clip(split, (family,), render)

    per_split = {"train": scaled(12, scale), "valid": scaled(4, scale), "test": scaled(4, scale)}
    return TaskPlan(
        name="demo_instruments",
        description="NSynth-like notes over 2.3 octaves labelled by instrument family",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=list(SCENE_SCORES),
        labels=families,
        clips=stratified(rng, per_split, families, make),
    )


def tags_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.25
    n = n_samples(duration)
    clips = []
    per_split = {
        "train": scaled(100, scale, 8),
        "valid": scaled(30, scale, 8),
        "test": scaled(30, scale, 8),
    }
    for split, count in per_split.items():
        for i in range(count):
            # cycling the first tag puts every tag in every split
            others = [t for t in TAGS if t != TAGS[i % len(TAGS)]]
            n_extra = int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))
            tags = sorted([TAGS[i % len(TAGS)], *rng.choice(others, n_extra, replace=False)])
            render = partial(scene, n=n, sources=[sounding(t) for t in tags])
            clips.append(Clip(split, tuple(tags), render))
    return TaskPlan(
        name="demo_tags",
        description="FSD50K-like mixtures of 1-3 everyday sounds, tagged with all of them",
        embedding_type="scene",
        prediction_type="multilabel",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=["mAP", "d_prime", "aucroc"],
        labels=list(TAGS),
        clips=[clips[i] for i in rng.permutation(len(clips))],
    )


def speakers_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    duration = 1.25
    n = n_samples(duration)
    # four pairs of similar voices, so that some speakers are easily confused
    voices = [Speaker.random(rng) for _ in range(4)]
    voices = [voice.sibling(rng) for voice in voices for _ in range(2)]
    speakers = {f"speaker{i:02d}": voice for i, voice in enumerate(voices, start=1)}

    def make(split: str, name: str) -> Clip:
        # everyone says the same kind of thing: two words of the words task
        words = [str(w) for w in rng.choice(WORDS, 2, replace=False)]
        source = spoken(words, speakers[name])
        render = partial(scene, n=n, sources=[source], active=(1.0, 1.0))
        return Clip(split, (name,), render)

    per_split = {"train": scaled(12, scale), "valid": scaled(4, scale), "test": scaled(4, scale)}
    return TaskPlan(
        name="demo_speakers",
        description="VoxCeleb1-like identification of 8 synthetic voices saying the same words",
        embedding_type="scene",
        prediction_type="multiclass",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=list(SCENE_SCORES),
        labels=sorted(speakers),
        clips=stratified(rng, per_split, sorted(speakers), make),
    )


def events_task(rng: np.random.Generator, scale: float) -> TaskPlan:
    """Strongly labelled soundscapes in train/valid/test, plus weakly labelled ones (clip-level
    labels in ``weak_labels.json``) in extra splits, laid out as the DESED converter does."""
    duration = 10.0
    n = n_samples(duration)
    strong = {
        "train": scaled(20, scale, 10),
        "valid": scaled(8, scale, 10),
        "test": scaled(16, scale, 10),
    }
    weak = {"weak_train": scaled(8, scale, 2), "weak_valid": scaled(2, scale, 1)}
    clips = []
    for split, count in (strong | weak).items():
        with_events = 0
        for i in range(count):
            # one strong soundscape in eight is background only; the first event of the others
            # cycles through the classes so that every split has every class
            events: list[Event] = []
            if split in weak or i % 8 != 3:
                first = EVENT_CLASSES[with_events % len(EVENT_CLASSES)]
                labels = [first, *rng.choice(EVENT_CLASSES, int(rng.integers(0, 6)))]
                events = _place_events(rng, [str(label) for label in labels], n)
                with_events += 1
            snrs = rng.uniform(10.0, 30.0, len(events))
            render = partial(_render_soundscape, n=n, events=events, snrs=snrs)
            if split in weak:
                clips.append(Clip(split, tuple(sorted({e.label for e in events})), render))
            else:
                clips.append(Clip(split, tuple(events), render))
    return TaskPlan(
        name="demo_events",
        description="DESED-like 10 s soundscapes with strongly labelled events over background",
        embedding_type="event",
        prediction_type="multilabel",
        split_mode="trainvaltest",
        splits=list(TRAINVALTEST),
        sample_duration=duration,
        evaluation=["event_onset_200ms_fms", "psds1", "segment_1s_er"],
        labels=list(EVENT_CLASSES),
        clips=[clips[i] for i in rng.permutation(len(clips))],
        extra_metadata={"weak_label_file": WEAK_LABEL_FILE, "weak_splits": list(weak)},
        side_label_file=WEAK_LABEL_FILE,
    )


TASKS: dict[str, Callable[[np.random.Generator, float], TaskPlan]] = {
    "demo_sounds": sounds_task,
    "demo_words": words_task,
    "demo_pitch": pitch_task,
    "demo_instruments": instruments_task,
    "demo_tags": tags_task,
    "demo_speakers": speakers_task,
    "demo_events": events_task,
}


def _place_events(rng: np.random.Generator, labels: Sequence[str], n: int) -> list[Event]:
    """Random spans, sorted by onset, with times at whole samples expressed in ms.

    One event in five may overlap events of other classes; events of one class never overlap
    (annotations of real data merge them and PSDS rejects them). An event that finds no free
    place in a few tries is left out.
    """
    placed: list[tuple[str, int, int]] = []
    for label in labels:
        may_overlap = rng.random() < 0.2
        for _ in range(10):
            length = n_samples(log_uniform(rng, 0.5, 4.0))
            start = int(rng.integers(0, n - length + 1))
            if all(
                (may_overlap and other != label) or start >= end or start + length <= begin
                for other, begin, end in placed
            ):
                placed.append((label, start, start + length))
                break
    return [
        Event(label, 1000.0 * start / SR, 1000.0 * end / SR)
        for label, start, end in sorted(placed, key=lambda e: (e[1], e[0]))
    ]


def _render_soundscape(
    rng: np.random.Generator, n: int, events: Sequence[Event], snrs: np.ndarray
) -> np.ndarray:
    out = background(rng, n)
    for event, snr in zip(events, snrs):
        start, end = (int(round(t * SR / 1000.0)) for t in (event.start, event.end))
        add_at(out, 10.0 ** (snr / 20.0) * sound(event.label, rng, end - start), start)
    return finish(rng, random_channel(rng, out))
