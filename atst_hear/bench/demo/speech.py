"""A small formant synthesiser: phoneme strings spoken by synthetic speakers.

A speaker is a source (glottal pulse rate, spectral tilt, breathiness, jitter) and a filter
(vocal-tract length, formant bandwidths) plus a speaking rate; an utterance is a pulse train
shaped by a cascade of moving formant resonators, with noise for fricatives and stop bursts.
Good enough that words differ in their formant trajectories and speakers in their voices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .synth import (
    FILTER_HOP,
    fit,
    frame_track,
    log_uniform,
    n_samples,
    noise,
    one_pole_lowpass,
    pulse_train,
    resonate,
    rms,
    unit_rms,
)

# F1-F3 (Hz) of an adult male vocal tract; F4 is fixed at 3300 Hz before scaling
VOWELS = {
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}
# voiced consonants: formant targets and the voicing level relative to a vowel
SONORANTS = {
    "m": ((250, 1100, 2200), 0.35),
    "n": ((250, 1600, 2600), 0.35),
    "l": ((360, 1300, 2700), 0.6),
}
# unvoiced consonants: noise band (Hz) and level relative to a vowel; stops add a closure
FRICATIVES = {"s": ((4000, 7600), 0.5), "sh": ((2000, 5500), 0.6), "f": ((1200, 7600), 0.25)}
STOPS = {"p": ((400, 1600), 0.5), "t": ((3000, 6500), 0.6), "k": ((1500, 3500), 0.6)}
PHONEMES = (*VOWELS, *SONORANTS, *FRICATIVES, *STOPS)
CONSONANTS = (*SONORANTS, *FRICATIVES, *STOPS)
BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0])


@dataclass(frozen=True)
class Speaker:
    """Source and filter parameters of one synthetic voice."""

    f0: float  # mean pitch (Hz)
    tract_scale: float  # formant frequencies relative to the reference tract
    tilt: float  # one-pole coefficient of the glottal source: higher = darker voice
    breathiness: float  # aspiration noise relative to voicing
    bandwidth_scale: float
    rate: float  # speaking rate: >1 is faster
    jitter: float  # relative cycle-to-cycle pitch noise

    @classmethod
    def random(cls, rng: np.random.Generator) -> Speaker:
        """A voice from the whole population (low male to child-like)."""
        return cls(
            f0=log_uniform(rng, 85.0, 260.0),
            tract_scale=rng.uniform(0.85, 1.25),
            tilt=rng.uniform(0.88, 0.985),
            breathiness=rng.uniform(0.02, 0.35),
            bandwidth_scale=rng.uniform(0.8, 1.5),
            rate=rng.uniform(0.8, 1.25),
            jitter=rng.uniform(0.002, 0.02),
        )

    def sibling(self, rng: np.random.Generator) -> Speaker:
        """A similar but distinct voice: pitch, vocal tract, voice quality and rate moved by a
        few per cent each."""
        return replace(
            self,
            f0=self.f0 * rng.uniform(0.9, 1.1),
            tract_scale=self.tract_scale * rng.uniform(0.95, 1.05),
            tilt=float(np.clip(self.tilt + rng.uniform(-0.02, 0.02), 0.85, 0.99)),
            breathiness=self.breathiness * rng.uniform(0.7, 1.3),
            rate=self.rate * rng.uniform(0.93, 1.07),
        )


def parse(word: str) -> list[str]:
    """``"shano"`` -> ``["sh", "a", "n", "o"]``; raises ValueError for unknown letters."""
    phonemes, i = [], 0
    while i < len(word):
        for length in (2, 1):
            if word[i : i + length] in PHONEMES:
                phonemes.append(word[i : i + length])
                i += length
                break
        else:
            raise ValueError(f"{word!r}: no phoneme starts at {word[i:]!r}; known: {PHONEMES}")
    return phonemes


def utterance(rng: np.random.Generator, phonemes: list[str], speaker: Speaker) -> np.ndarray:
    """Speak ``phonemes`` with ``speaker``; returns a unit-RMS waveform of natural length."""
    segments = [_segment(rng, p, speaker) for p in phonemes]
    n = sum(seg_n for _, seg_n in segments)
    n_frames = -(-n // FILTER_HOP)
    formants = np.empty((n_frames, 3))
    voicing = np.zeros(n_frames)
    unvoiced = np.zeros(n)
    # each phoneme's formant target holds for its frames; consonants without a tract shape of
    # their own keep the neighbouring vowel's, which the smoothing below turns into transitions
    previous = np.array(VOWELS["a"], dtype=float)
    frame_of = np.minimum(np.arange(n_frames) * FILTER_HOP, n - 1)
    bounds = np.cumsum([0] + [seg_n for _, seg_n in segments])
    for (phoneme, seg_n), seg_start in zip(segments, bounds[:-1]):
        frames = (frame_of >= seg_start) & (frame_of < seg_start + seg_n)
        if phoneme in VOWELS:
            previous = np.array(VOWELS[phoneme], dtype=float)
            voicing[frames] = 1.0
        elif phoneme in SONORANTS:
            previous = np.array(SONORANTS[phoneme][0], dtype=float)
            voicing[frames] = SONORANTS[phoneme][1]
        else:
            unvoiced[seg_start : seg_start + seg_n] = _noise_consonant(rng, phoneme, seg_n, speaker)
        formants[frames] = previous
    formants = _smooth(formants, n_samples(0.03) // FILTER_HOP)
    voicing = _smooth(voicing[:, None], n_samples(0.012) // FILTER_HOP)[:, 0]
    scale = speaker.tract_scale * rng.uniform(0.97, 1.03)

    pitch = _intonation(rng, speaker, n)
    source = one_pole_lowpass(pulse_train(pitch), speaker.tilt)
    source = unit_rms(source) + speaker.breathiness * noise(rng, n, low=500.0)
    voicing_track = frame_track(voicing, n)
    voiced = source * voicing_track
    for k in range(3):
        bandwidth = BANDWIDTHS[k] * speaker.bandwidth_scale
        voiced = resonate(voiced, formants[:, k] * scale, bandwidth)
    voiced = resonate(voiced, 3300.0 * scale, BANDWIDTHS[3] * speaker.bandwidth_scale)
    # consonant levels are relative to the vowels, whatever share of the word they take
    vowel_part = voicing_track > 0.5
    if vowel_part.any():
        voiced /= rms(voiced[vowel_part])
    return unit_rms(voiced + unvoiced)


def babble(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of made-up words (one to three CV syllables) from a random speaker, with
    short pauses."""
    speaker = Speaker.random(rng)
    pieces: list[np.ndarray] = []
    total = 0
    while total < n:
        word = [str(rng.choice(CONSONANTS)), str(rng.choice(list(VOWELS)))]
        for _ in range(rng.integers(0, 3)):
            word += [str(rng.choice(CONSONANTS)), str(rng.choice(list(VOWELS)))]
        piece = utterance(rng, word, speaker)
        pause = np.zeros(n_samples(rng.uniform(0.03, 0.15)))
        pieces += [piece, pause]
        total += len(piece) + len(pause)
    return fit(np.concatenate(pieces), n)


def _segment(rng: np.random.Generator, phoneme: str, speaker: Speaker) -> tuple[str, int]:
    if phoneme in VOWELS:
        seconds = rng.uniform(0.09, 0.17)
    elif phoneme in SONORANTS:
        seconds = rng.uniform(0.05, 0.09)
    elif phoneme in FRICATIVES:
        seconds = rng.uniform(0.08, 0.14)
    else:
        seconds = rng.uniform(0.06, 0.11)
    return phoneme, n_samples(seconds / speaker.rate)


def _noise_consonant(
    rng: np.random.Generator, phoneme: str, n: int, speaker: Speaker
) -> np.ndarray:
    """Fricative hiss over the whole segment, or a stop: silent closure, burst, aspiration."""
    (low, high), level = FRICATIVES.get(phoneme) or STOPS[phoneme]
    scale = np.sqrt(speaker.tract_scale)  # smaller tracts have higher noise resonances
    band = noise(rng, n, low=low * scale, high=min(high * scale, 7800.0))
    t = np.arange(n) / n
    if phoneme in FRICATIVES:
        shape = np.sin(np.pi * t) ** 0.5
    else:
        closure = rng.uniform(0.4, 0.6)
        shape = np.where(t < closure, 0.0, np.exp(-(t - closure) * n / n_samples(0.015)))
    return level * band * shape


def _intonation(rng: np.random.Generator, speaker: Speaker, n: int) -> np.ndarray:
    """Per-sample pitch: a falling declination with a random accent and cycle jitter."""
    t = np.linspace(0.0, 1.0, n)
    accent_at = rng.uniform(0.2, 0.7)
    contour = (
        rng.uniform(1.03, 1.12)
        - rng.uniform(0.1, 0.2) * t
        + rng.uniform(0.0, 0.12) * np.exp(-(((t - accent_at) / 0.15) ** 2))
    )
    jitter = (
        1.0 + speaker.jitter * np.repeat(rng.standard_normal(-(-n // FILTER_HOP)), FILTER_HOP)[:n]
    )
    return speaker.f0 * rng.uniform(0.92, 1.08) * contour * jitter


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving average along frames (edges held), so targets turn into glides."""
    if width <= 1:
        return track
    kernel = np.ones(width) / width
    padded = np.pad(track, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    return np.stack(
        [np.convolve(padded[:, k], kernel, mode="valid") for k in range(track.shape[1])], axis=1
    )
