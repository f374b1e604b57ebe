"""Single instrument notes, NSynth-like: one function per instrument family.

Each family is ``(rng, f0, n, held) -> waveform``: a note at ``f0`` Hz whose key is held for
``held`` samples of an ``n``-sample clip and then released. Timbre parameters are drawn per
note, so every note is a different instrument of its family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .synth import (
    envelope,
    fit,
    fm_tone,
    harmonics,
    impact,
    log_uniform,
    n_samples,
    noise,
    partials,
    resonate,
    unit_rms,
    vibrato,
)

RELEASE = 0.08  # s, for families that stop sounding when the key is let go


def keyboard(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Piano-like: stretched partials, higher ones dying faster, damped on release."""
    decay = rng.uniform(0.4, 1.5)
    slope = rng.uniform(1.0, 1.8)
    amplitudes = [k**-slope * envelope(n, 0.003, decay / (1 + 0.25 * k)) for k in range(1, 25)]
    tone = harmonics(rng, f0, amplitudes, n, stretch=rng.uniform(1e-4, 5e-4))
    return tone * _key(n, held, attack=0.0)


def mallet(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Marimba / vibraphone-like bars: a few inharmonic modes, ringing past the key release."""
    ratios = [1.0, 3.93, 9.54] if rng.random() < 0.5 else [1.0, 2.76, 5.4]
    decay = rng.uniform(0.2, 0.8)
    return impact(
        rng,
        [f0 * r for r in ratios],
        [decay, decay / 3, decay / 8],
        n,
        amplitudes=[1.0, rng.uniform(0.1, 0.5), rng.uniform(0.02, 0.2)],
        click=0.2,
    )


def guitar(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """A plucked string: comb-filtered harmonics (pluck position) that darken as they decay."""
    position = rng.uniform(0.08, 0.3)
    decay = rng.uniform(0.3, 1.0)
    amplitudes = [
        abs(np.sin(np.pi * k * position)) / k * envelope(n, 0.002, decay / (1 + 0.15 * k))
        for k in range(1, 30)
    ]
    return harmonics(rng, f0, amplitudes, n, stretch=1e-5) * _key(n, held, attack=0.0)


def string(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Bowed string: sawtooth-like spectrum, slow attack, gentle vibrato, body resonance."""
    track = vibrato(rng, f0, n, rng.uniform(4.5, 6.5), rng.uniform(0.002, 0.005))
    slope = rng.uniform(0.9, 1.3)
    tone = harmonics(rng, track, [k**-slope for k in range(1, 30)], n)
    tone = resonate(tone, log_uniform(rng, 300.0, 3000.0), rng.uniform(200.0, 800.0))
    return unit_rms(tone) * _key(n, held, attack=rng.uniform(0.05, 0.2))


def brass(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """FM brass: the modulation index follows the envelope, so louder is brighter."""
    key = _key(n, held, attack=rng.uniform(0.03, 0.08))
    return fm_tone(rng, f0, 1.0, rng.uniform(2.0, 5.0) * key, n) * key


def reed(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Clarinet-like: strong odd harmonics, weak even ones, slight tremolo."""
    even = rng.uniform(0.05, 0.3)
    amplitudes = [(1.0 if k % 2 else even) / k for k in range(1, 25)]
    tone = harmonics(rng, f0, amplitudes, n)
    tremolo = vibrato(rng, 1.0, n, rng.uniform(3.0, 6.0), rng.uniform(0.0, 0.1))
    return tone * tremolo * _key(n, held, attack=rng.uniform(0.02, 0.05))


def flute(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Nearly sinusoidal with breath noise and vibrato."""
    track = vibrato(rng, f0, n, rng.uniform(4.0, 6.0), rng.uniform(0.002, 0.006))
    amplitudes = [1.0, rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.2), rng.uniform(0.0, 0.05)]
    breath = rng.uniform(0.05, 0.25) * noise(rng, n, low=f0, high=min(8 * f0, 7500.0))
    tone = unit_rms(harmonics(rng, track, amplitudes, n)) + breath
    return tone * _key(n, held, attack=rng.uniform(0.05, 0.12))


def organ(rng: np.random.Generator, f0: float, n: int, held: int) -> np.ndarray:
    """Drawbar organ: fixed harmonic ratios at random levels, switched on and off abruptly."""
    levels = rng.uniform(0.0, 1.0, 6) * (rng.random(6) < 0.7)
    levels[0] = 1.0
    ratios = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]
    tone = partials(rng, [f0 * r for r in ratios], list(levels), n)
    return tone * _key(n, held, attack=0.005, release=0.01)


FAMILIES: dict[str, Callable[[np.random.Generator, float, int, int], np.ndarray]] = {
    "brass": brass,
    "flute": flute,
    "guitar": guitar,
    "keyboard": keyboard,
    "mallet": mallet,
    "organ": organ,
    "reed": reed,
    "string": string,
}


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def note(rng: np.random.Generator, family: str, midi: int, n: int, held: int) -> np.ndarray:
    """A unit-RMS note of ``family`` at MIDI pitch ``midi``, tuned within +-10 cents."""
    if family not in FAMILIES:
        raise ValueError(f"unknown instrument family {family!r}; known: {sorted(FAMILIES)}")
    f0 = midi_to_hz(midi + rng.uniform(-0.1, 0.1))
    return unit_rms(fit(FAMILIES[family](rng, f0, n, held), n, fade=0.005))


def _key(n: int, held: int, attack: float, release: float = RELEASE) -> np.ndarray:
    """1 while the key is held (after ``attack`` s), then a linear release to silence."""
    env = np.zeros(n)
    env[: min(held, n)] = envelope(min(held, n), attack)
    n_release = min(n_samples(release), n - min(held, n))
    if n_release > 0:
        env[held : held + n_release] = np.linspace(env[held - 1], 0.0, n_release)
    return env
