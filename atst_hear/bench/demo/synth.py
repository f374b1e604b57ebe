"""Signal primitives every demo sound is built from.

All functions work on float64 numpy arrays at :data:`SR` and take their randomness from an
explicit ``numpy.random.Generator``, so a clip depends only on the generator it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import lfilter

from ...audio import SAMPLE_RATE

SR = SAMPLE_RATE
NYQUIST = SR / 2
# partials above this are muted: they would alias and no real source puts energy there
MAX_PARTIAL_HZ = 0.45 * SR
# formant and band-pass filters are updated at this rate when their frequency moves
FILTER_HOP = SR // 200

FloatOrTrack = float | np.ndarray


def n_samples(seconds: float) -> int:
    return int(round(seconds * SR))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A value whose logarithm is uniform: the natural spread of frequencies and durations."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


def unit_rms(x: np.ndarray) -> np.ndarray:
    return x / rms(x)


def envelope(n: int, attack: float, decay: float | None = None, release: float = 0.0) -> np.ndarray:
    """Linear attack (s), exponential decay with time constant ``decay`` (s; None holds the
    level) and a linear release over the last ``release`` s."""
    env = np.ones(n)
    n_attack = min(n_samples(attack), n)
    if n_attack:
        env[:n_attack] = np.linspace(0.0, 1.0, n_attack, endpoint=False)
    if decay is not None:
        t = np.arange(n) / SR
        env *= np.exp(-np.maximum(t - attack, 0.0) / decay)
    n_release = min(n_samples(release), n)
    if n_release:
        env[n - n_release :] *= np.linspace(1.0, 0.0, n_release)
    return env


def smooth_random_track(
    rng: np.random.Generator, n: int, rate_hz: float, low: float, high: float
) -> np.ndarray:
    """A slowly wandering value in ``[low, high]`` that changes about ``rate_hz`` times a second
    (wind gusts, drifting resonances)."""
    n_knots = max(2, int(np.ceil(n / SR * rate_hz)) + 2)
    knots = rng.uniform(low, high, n_knots)
    return np.interp(np.linspace(0, n_knots - 1, n), np.arange(n_knots), knots)


def shape_spectrum(
    x: np.ndarray,
    low: float = 0.0,
    high: float = NYQUIST,
    exponent: float = 0.0,
    order: int = 4,
) -> np.ndarray:
    """Filter in the frequency domain: Butterworth-like band edges ``low``/``high`` (Hz, 0 or
    Nyquist for none) and a power slope of ``1/f**exponent`` around 1 kHz."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    freqs[0] = freqs[1] if len(freqs) > 1 else 1.0
    gain = (freqs / 1000.0) ** (-exponent / 2.0)
    if low > 0:
        gain /= np.sqrt(1.0 + (low / freqs) ** (2 * order))
    if high < NYQUIST:
        gain /= np.sqrt(1.0 + (freqs / high) ** (2 * order))
    return np.fft.irfft(spectrum * gain, len(x))


def noise(
    rng: np.random.Generator,
    n: int,
    low: float = 0.0,
    high: float = NYQUIST,
    exponent: float = 0.0,
) -> np.ndarray:
    """Unit-RMS Gaussian noise, band-limited and coloured by :func:`shape_spectrum`
    (exponent 0 white, 1 pink, 2 brown)."""
    return unit_rms(shape_spectrum(rng.standard_normal(n), low, high, exponent))


def partials(
    rng: np.random.Generator,
    freqs: Sequence[FloatOrTrack],
    amplitudes: Sequence[FloatOrTrack],
    n: int,
) -> np.ndarray:
    """Sum of sinusoids; each frequency and amplitude is a constant or a per-sample track.

    Phases start at random; partials above :data:`MAX_PARTIAL_HZ` are muted sample by sample.
    """
    out = np.zeros(n)
    for freq, amplitude in zip(freqs, amplitudes):
        freq = np.broadcast_to(np.asarray(freq, dtype=float), (n,))
        phase = 2 * np.pi * np.cumsum(freq) / SR + rng.uniform(0, 2 * np.pi)
        out += amplitude * np.sin(phase) * (freq < MAX_PARTIAL_HZ)
    return out


def harmonics(
    rng: np.random.Generator,
    f0: FloatOrTrack,
    amplitudes: Sequence[FloatOrTrack],
    n: int,
    stretch: float = 0.0,
) -> np.ndarray:
    """Partials at ``k * f0 * sqrt(1 + stretch * k**2)`` (stretch > 0: stiff strings)."""
    ratios = [k * np.sqrt(1.0 + stretch * k * k) for k in range(1, len(amplitudes) + 1)]
    f0 = np.asarray(f0, dtype=float)
    return partials(rng, [r * f0 for r in ratios], amplitudes, n)


def fm_tone(
    rng: np.random.Generator, f0: FloatOrTrack, ratio: float, index: FloatOrTrack, n: int
) -> np.ndarray:
    """Two-operator FM: carrier at ``f0``, modulator at ``ratio * f0`` with modulation index
    ``index`` (a track makes the brightness follow the loudness, as in brass)."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=float), (n,))
    carrier = 2 * np.pi * np.cumsum(f0) / SR + rng.uniform(0, 2 * np.pi)
    modulator = 2 * np.pi * np.cumsum(ratio * f0) / SR + rng.uniform(0, 2 * np.pi)
    return np.sin(carrier + index * np.sin(modulator))


def vibrato(
    rng: np.random.Generator, f0: float, n: int, rate_hz: float, depth: float
) -> np.ndarray:
    """``f0`` modulated by a sinusoid of relative ``depth`` at ``rate_hz``."""
    t = np.arange(n) / SR
    return f0 * (1.0 + depth * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi)))


def impact(
    rng: np.random.Generator,
    freqs: Sequence[float],
    decays: Sequence[float],
    n: int,
    amplitudes: Sequence[float] | None = None,
    click: float = 0.3,
) -> np.ndarray:
    """A struck object: exponentially decaying modes (decay time constants in s) plus a short
    noise click for the strike itself."""
    amplitudes = [1.0] * len(freqs) if amplitudes is None else amplitudes
    envelopes = [a * envelope(n, 0.001, d) for a, d in zip(amplitudes, decays)]
    out = partials(rng, freqs, envelopes, n)
    if click > 0:
        out += click * rms(out) * noise(rng, n, low=500.0) * envelope(n, 0.0, 0.004)
    return out


def pulse_train(f0: np.ndarray) -> np.ndarray:
    """One unit impulse per period of the per-sample frequency track ``f0``."""
    cycles = np.floor(np.cumsum(f0) / SR)
    return np.diff(cycles, prepend=0.0)


def one_pole_lowpass(x: np.ndarray, pole: float) -> np.ndarray:
    """``y[t] = x[t] + pole * y[t-1]``: a -6 dB/octave slope above ``(1 - pole) * SR / 2pi``."""
    return lfilter([1.0 - pole], [1.0, -pole], x)


def resonate(x: np.ndarray, freq: FloatOrTrack, bandwidth: FloatOrTrack) -> np.ndarray:
    """Two-pole resonator with unit gain at 0 Hz (Klatt's formant resonator).

    ``freq`` and ``bandwidth`` (Hz) are constants or per-frame tracks at :data:`FILTER_HOP`;
    the filter state carries across frames so a moving resonance glides without clicks.
    """
    n_frames = max(1, -(-len(x) // FILTER_HOP))
    freq = np.broadcast_to(np.asarray(freq, dtype=float), (n_frames,))
    bandwidth = np.broadcast_to(np.asarray(bandwidth, dtype=float), (n_frames,))
    radius = np.exp(-np.pi * bandwidth / SR)
    b1 = 2 * radius * np.cos(2 * np.pi * np.minimum(freq, 0.49 * SR) / SR)
    b2 = -radius * radius
    gain = 1.0 - b1 - b2
    if np.ptp(freq) == 0 and np.ptp(bandwidth) == 0:
        return lfilter([gain[0]], [1.0, -b1[0], -b2[0]], x)
    out = np.empty_like(x)
    state = np.zeros(2)
    for frame in range(n_frames):
        part = slice(frame * FILTER_HOP, (frame + 1) * FILTER_HOP)
        out[part], state = lfilter(
            [gain[frame], 0.0, 0.0], [1.0, -b1[frame], -b2[frame]], x[part], zi=state
        )
    return out


def frame_track(values: np.ndarray, n: int) -> np.ndarray:
    """Per-sample values of a per-frame track (frames of :data:`FILTER_HOP` samples)."""
    centres = (np.arange(len(values)) + 0.5) * FILTER_HOP
    return np.interp(np.arange(n), centres, values)


def add_at(buffer: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add ``x`` into ``buffer`` from sample ``start``, cutting what does not fit."""
    end = min(len(buffer), start + len(x))
    if end > start:
        buffer[start:end] += x[: end - start]


def fit(x: np.ndarray, n: int, fade: float = 0.01) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples, with short fades so a cut never clicks."""
    out = np.zeros(n)
    out[: min(n, len(x))] = x[:n]
    n_fade = min(n_samples(fade), n // 2)
    if n_fade:
        ramp = np.linspace(0.0, 1.0, n_fade)
        out[:n_fade] *= ramp
        end = min(n, len(x))
        out[end - n_fade : end] *= ramp[::-1]
    return out


def random_channel(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A random recording channel: band limits and spectral tilt, as microphones and rooms
    differ between recordings of one class."""
    return shape_spectrum(
        x,
        low=log_uniform(rng, 30.0, 250.0),
        high=rng.uniform(4500.0, NYQUIST),
        exponent=rng.uniform(-0.5, 0.5),
        order=2,
    )


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS ambience: coloured noise with a random slope and band, slowly breathing, and
    sometimes a mains hum."""
    ambience = noise(
        rng,
        n,
        low=log_uniform(rng, 20.0, 200.0),
        high=rng.uniform(3000.0, NYQUIST),
        exponent=rng.uniform(0.5, 2.0),
    )
    ambience *= smooth_random_track(rng, n, rate_hz=0.5, low=0.6, high=1.0)
    if rng.random() < 0.3:
        mains = rng.choice([50.0, 60.0])
        hum = harmonics(rng, mains, [1.0, 0.5, 0.3, 0.2], n)
        ambience += rng.uniform(0.1, 0.4) * unit_rms(hum)
    return unit_rms(ambience)


def at_snr(signal_rms: float, snr_db: float) -> float:
    """The RMS a unit-RMS noise must be scaled to for ``snr_db`` below ``signal_rms``."""
    return signal_rms / 10.0 ** (snr_db / 20.0)


def finish(
    rng: np.random.Generator, x: np.ndarray, level_db: tuple[float, float] = (-38.0, -18.0)
) -> np.ndarray:
    """Random overall level (RMS dBFS, uniform in ``level_db``), limited to a 0.95 peak, so
    loudness says nothing about the class."""
    x = x * 10.0 ** (rng.uniform(*level_db) / 20.0) / rms(x)
    peak = float(np.max(np.abs(x)))
    return x * (0.95 / peak) if peak > 0.95 else x
