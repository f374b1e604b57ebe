"""Synthesis primitives and sound sources of the demo suite do what their names promise."""

from __future__ import annotations

import numpy as np
import pytest

from atst_hear.bench.demo import synth
from atst_hear.bench.demo.notes import FAMILIES, midi_to_hz, note
from atst_hear.bench.demo.sources import SOUND_CLASSES, chirp_down, chirp_up, sound
from atst_hear.bench.demo.speech import Speaker, parse, utterance

SR = synth.SR


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.fft.rfftfreq(len(x), 1 / SR), np.abs(np.fft.rfft(x)) ** 2


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_noise_is_unit_rms_and_stays_in_its_band():
    x = synth.noise(rng(), SR, low=1000.0, high=3000.0)
    assert synth.rms(x) == pytest.approx(1.0)
    freqs, power = spectrum(x)
    in_band = power[(freqs > 700) & (freqs < 4000)].sum()
    assert in_band / power.sum() > 0.95


def test_coloured_noise_slopes_down_for_positive_exponent():
    freqs, power = spectrum(synth.noise(rng(), 4 * SR, exponent=2.0))
    low = power[(freqs > 100) & (freqs < 200)].mean()
    high = power[(freqs > 3000) & (freqs < 6000)].mean()
    assert low > 100 * high


def test_harmonics_put_energy_at_multiples_of_f0_and_mute_above_the_limit():
    x = synth.harmonics(rng(), 3000.0, [1.0, 1.0, 1.0], SR)
    freqs, power = spectrum(x)
    assert power[np.argmin(abs(freqs - 3000))] > 0.3 * power.sum()
    assert power[np.argmin(abs(freqs - 6000))] > 0.3 * power.sum()
    assert power[freqs > 7500].sum() < 1e-6 * power.sum()  # 9 kHz would alias: muted


def test_resonator_peaks_at_its_frequency_and_moving_one_follows_its_track():
    white = rng().standard_normal(SR)
    freqs, power = spectrum(synth.resonate(white, 1200.0, 80.0))
    smooth = np.convolve(power, np.ones(50) / 50, mode="same")
    assert abs(freqs[np.argmax(smooth)] - 1200) < 60
    n_frames = -(-SR // synth.FILTER_HOP)
    track = np.linspace(500.0, 3000.0, n_frames)
    glide = synth.resonate(white, track, 80.0)
    first, last = spectrum(glide[: SR // 4])[1], spectrum(glide[-SR // 4 :])[1]
    half_freqs = np.fft.rfftfreq(SR // 4, 1 / SR)
    assert half_freqs[np.argmax(first)] < 1500 < half_freqs[np.argmax(last)]


def test_pulse_train_has_one_pulse_per_period():
    assert synth.pulse_train(np.full(SR, 100.0)).sum() == pytest.approx(100, abs=1)


def test_finish_sets_a_level_in_range_and_never_clips():
    for seed in range(20):
        x = synth.finish(rng(seed), rng(seed + 100).standard_normal(SR), level_db=(-30.0, -20.0))
        level = 20 * np.log10(synth.rms(x))
        assert np.max(np.abs(x)) <= 0.95 + 1e-9
        assert -30.0 - 1e-6 <= level <= -20.0 + 1e-6 or np.max(np.abs(x)) == pytest.approx(0.95)


def test_fit_pads_cuts_and_fades():
    x = np.ones(1000)
    padded, cut = synth.fit(x, 2000), synth.fit(x, 500)
    assert len(padded) == 2000 and padded[1500] == 0 and padded[0] == 0
    assert len(cut) == 500 and cut[-1] == 0 and cut[250] == 1


@pytest.mark.parametrize("name", sorted(SOUND_CLASSES))
def test_every_sound_class_fills_exactly_the_requested_span(name):
    x = sound(name, rng(), 12345)
    assert x.shape == (12345,) and np.isfinite(x).all()
    assert synth.rms(x) == pytest.approx(1.0)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)  # 10 ms
    silent = np.sqrt(np.mean(frames**2, axis=1)) < 0.01
    edges = np.diff(np.concatenate([[0], silent.astype(int), [0]]))
    longest = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0)
    assert longest < 60, f"{longest * 10} ms of silence inside the span"


def test_unknown_sound_class_is_named():
    with pytest.raises(ValueError, match="'gong'"):
        sound("gong", rng(), 100)


def test_chirp_directions_mirror_each_other():
    def centroid_trend(x):
        first_sweep = x[: synth.n_samples(0.08)]
        halves = np.array_split(first_sweep, 2)
        centroids = []
        for half in halves:
            freqs, power = spectrum(half)
            centroids.append((freqs * power).sum() / power.sum())
        return centroids[1] - centroids[0]

    assert centroid_trend(chirp_up(rng(5), SR)) > 0
    assert centroid_trend(chirp_down(rng(5), SR)) < 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_notes_sound_at_their_pitch(family):
    midi = 57  # 220 Hz
    x = note(rng(1), family, midi, SR, held=SR // 2)
    assert x.shape == (SR,) and np.isfinite(x).all()
    freqs, power = spectrum(x)
    band = (freqs > 100) & (freqs < 2000)
    peak = freqs[band][np.argmax(power[band])]
    ratio = peak / midi_to_hz(midi)
    assert abs(ratio - round(ratio)) < 0.03 and round(ratio) >= 1, f"peak at {peak:.0f} Hz"


def test_parse_splits_digraphs_and_rejects_unknown_letters():
    assert parse("shano") == ["sh", "a", "n", "o"]
    with pytest.raises(ValueError, match="'xa'"):
        parse("axa")


def test_utterance_scales_formants_with_the_vocal_tract():
    base = Speaker.random(rng(3))
    small, large = (
        Speaker(**{**vars(base), "tract_scale": scale, "f0": 120.0}) for scale in (1.2, 0.85)
    )

    def centroid(speaker):
        freqs, power = spectrum(utterance(rng(4), parse("aiai"), speaker))
        return (freqs * power).sum() / power.sum()

    assert centroid(small) > centroid(large)
