"""Everyday sound classes for the scene, tagging and event tasks.

Each class is a function ``(rng, n) -> waveform`` that fills exactly ``n`` samples with one
random instance of the class; :func:`sound` calls one and scales it to unit RMS. Parameter
ranges overlap between classes on purpose (``chirp_up`` and ``chirp_down`` differ only in the
direction of their sweeps), so that a class is told by its structure in time and frequency
rather than by one average spectrum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .speech import babble
from .synth import (
    FILTER_HOP,
    SR,
    add_at,
    envelope,
    fit,
    harmonics,
    impact,
    log_uniform,
    n_samples,
    noise,
    partials,
    resonate,
    smooth_random_track,
    unit_rms,
)


def knock(rng: np.random.Generator, n: int) -> np.ndarray:
    """Knocking on a wooden object, 3-8 strikes a second: low modes that die within tens of ms."""
    base = log_uniform(rng, 200.0, 500.0)
    ratios = [1.0, rng.uniform(1.8, 2.6), rng.uniform(3.4, 5.0)]
    out = np.zeros(n)
    for start in _strike_times(rng, n, rng.uniform(3.0, 8.0)):
        freqs = [base * r * rng.uniform(0.97, 1.03) for r in ratios]
        decays = [rng.uniform(0.015, 0.07) for _ in ratios]
        strike = impact(rng, freqs, decays, n_samples(0.3), [1.0, 0.5, 0.25], click=0.5)
        add_at(out, strike * rng.uniform(0.5, 1.0), start)
    return out


def bell(rng: np.random.Generator, n: int) -> np.ndarray:
    """A bell struck every 0.4-1 s: inharmonic hum, prime, tierce, quint and nominal partials
    ringing for up to seconds."""
    base = log_uniform(rng, 400.0, 900.0)
    ratios = [0.5, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0]
    decay = rng.uniform(0.3, 1.5)
    out = np.zeros(n)
    for start in _strike_times(rng, n, rng.uniform(1.0, 2.5)):
        freqs = [base * r * rng.uniform(0.99, 1.01) for r in ratios]
        decays = [decay / (1.0 + 0.4 * k) for k in range(len(ratios))]
        amplitudes = rng.uniform(0.3, 1.0, len(ratios))
        add_at(out, impact(rng, freqs, decays, n - start, amplitudes, click=0.1), start)
    return out


def chirp_up(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bird-like rising sweeps."""
    return _sweeps(rng, n, rising=True)


def chirp_down(rng: np.random.Generator, n: int) -> np.ndarray:
    """Falling sweeps with exactly the frequency ranges and timing of :func:`chirp_up`."""
    return _sweeps(rng, n, rising=False)


def engine(rng: np.random.Generator, n: int) -> np.ndarray:
    """A low, buzzing harmonic drone with a wandering speed and rumble."""
    f0 = log_uniform(rng, 30.0, 70.0) * smooth_random_track(rng, n, 1.0, 0.93, 1.07)
    slope = rng.uniform(0.6, 1.3)
    tone = harmonics(rng, f0, [k**-slope for k in range(1, 60)], n)
    firing = 1.0 + rng.uniform(0.1, 0.4) * np.sin(2 * np.pi * np.cumsum(f0 / 2) / SR)
    rumble = noise(rng, n, high=rng.uniform(300.0, 1500.0), exponent=1.0)
    return unit_rms(tone * firing) + rng.uniform(0.2, 0.8) * rumble


def buzz(rng: np.random.Generator, n: int) -> np.ndarray:
    """An insect-like buzz: a bright harmonic tone with fast wing-beat vibrato and flutter."""
    f0 = log_uniform(rng, 150.0, 350.0)
    rate = rng.uniform(8.0, 30.0)
    t = np.arange(n) / SR
    track = f0 * (1 + rng.uniform(0.01, 0.04) * np.sin(2 * np.pi * rate * t))
    track *= smooth_random_track(rng, n, 2.0, 0.9, 1.1)
    slope = rng.uniform(0.5, 1.0)
    tone = harmonics(rng, track, [k**-slope for k in range(1, 30)], n)
    flutter = 1.0 + rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rate * 2 * t)
    return tone * flutter


def rain(rng: np.random.Generator, n: int) -> np.ndarray:
    """Many tiny drops (short high pings at random times) over a hiss."""
    out = np.zeros(n)
    count = int(rng.uniform(60.0, 300.0) * n / SR)
    drop_n = n_samples(0.03)
    for start in rng.integers(0, n, count):
        freq = log_uniform(rng, 1500.0, 6000.0)
        ping = partials(rng, [freq], [envelope(drop_n, 0.0005, rng.uniform(0.003, 0.012))], drop_n)
        add_at(out, ping * rng.uniform(0.2, 1.0), int(start))
    hiss = noise(rng, n, low=rng.uniform(800.0, 2000.0))
    return unit_rms(out) + rng.uniform(0.3, 1.0) * hiss


def wind(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gusting noise through a slowly moving resonance."""
    centre = np.exp(smooth_random_track(rng, n, 0.4, np.log(200.0), np.log(1500.0)))
    howl = resonate(noise(rng, n), centre[::FILTER_HOP], rng.uniform(60.0, 300.0))
    gusts = smooth_random_track(rng, n, rng.uniform(0.5, 2.0), 0.2, 1.0)
    return (unit_rms(howl) + 0.5 * noise(rng, n, high=1200.0, exponent=1.0)) * gusts


def alarm(rng: np.random.Generator, n: int) -> np.ndarray:
    """Beeping: a square-ish tone switched on and off, sometimes alternating two pitches."""
    freq = log_uniform(rng, 700.0, 1800.0)
    second = freq * (rng.uniform(1.15, 1.5) if rng.random() < 0.5 else 1.0)
    period = n_samples(rng.uniform(0.1, 0.5))
    duty = rng.uniform(0.3, 0.7)
    beep_n = max(1, int(period * duty))
    out = np.zeros(n)
    for i, start in enumerate(range(int(rng.integers(0, period)) - period, n, period)):
        tone_freq = freq if i % 2 == 0 else second
        beep = harmonics(rng, tone_freq, [1.0, 0.0, 1 / 3, 0.0, 1 / 5], beep_n)
        beep *= envelope(beep_n, 0.003, release=0.003)
        if start < 0:
            beep, start = beep[-start:], 0
        add_at(out, beep, start)
    return out


def drip(rng: np.random.Generator, n: int) -> np.ndarray:
    """Water drops, 3-7 a second: short resonant 'plinks' whose pitch jumps upwards."""
    out = np.zeros(n)
    drop_n = n_samples(0.12)
    for start in _strike_times(rng, n, rng.uniform(3.0, 7.0)):
        f_start = log_uniform(rng, 600.0, 1200.0)
        rise = n_samples(rng.uniform(0.01, 0.04))
        track = f_start * np.minimum(
            rng.uniform(1.5, 2.5), np.exp(np.arange(drop_n) / max(rise, 1))
        )
        plink = partials(rng, [track], [envelope(drop_n, 0.001, rng.uniform(0.01, 0.04))], drop_n)
        add_at(out, plink * rng.uniform(0.5, 1.0), start)
    return out


def speech(rng: np.random.Generator, n: int) -> np.ndarray:
    """Made-up syllables from a random synthetic speaker."""
    return babble(rng, n)


SOUND_CLASSES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "alarm": alarm,
    "bell": bell,
    "buzz": buzz,
    "chirp_down": chirp_down,
    "chirp_up": chirp_up,
    "drip": drip,
    "engine": engine,
    "knock": knock,
    "rain": rain,
    "speech": speech,
    "wind": wind,
}


def sound(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """One random instance of class ``name``: ``n`` samples, unit RMS, no clicks at the ends."""
    if name not in SOUND_CLASSES:
        raise ValueError(f"unknown sound class {name!r}; known: {sorted(SOUND_CLASSES)}")
    return unit_rms(fit(SOUND_CLASSES[name](rng, n), n, fade=0.005))


def _strike_times(rng: np.random.Generator, n: int, per_second: float) -> list[int]:
    """Start samples of a loose rhythm at about ``per_second`` over ``n`` samples, the first
    at 0, so that a sound fills its whole span without long silences."""
    count = max(1, int(round(per_second * n / SR)))
    spacing = n / count
    return [0, *(int((i + rng.uniform(-0.25, 0.25)) * spacing) for i in range(1, count))]


def _sweeps(rng: np.random.Generator, n: int, rising: bool) -> np.ndarray:
    out = np.zeros(n)
    low = log_uniform(rng, 800.0, 1500.0)
    span = rng.uniform(1.6, 2.5)
    sweep_n = min(n, n_samples(rng.uniform(0.08, 0.35)))
    overtone = rng.uniform(0.0, 0.4)
    for start in _strike_times(rng, n, rng.uniform(2.5, 6.0)):
        ramp = np.linspace(0.0, 1.0, sweep_n)
        track = low * span ** (ramp if rising else 1.0 - ramp)
        tone = harmonics(rng, track, [1.0, overtone, overtone / 3], sweep_n)
        add_at(out, tone * envelope(sweep_n, 0.01, release=0.02), start)
    return out
