import math

import pytest

from atst_hear import schedules

PEAK, WARMUP, TOTAL = 2e-3, 10, 100


def test_learning_rate_warms_up_linearly_from_zero_to_the_peak():
    assert schedules.learning_rate(0, PEAK, WARMUP, TOTAL) == 0.0
    assert schedules.learning_rate(WARMUP - 1, PEAK, WARMUP, TOTAL) == pytest.approx(PEAK)
    assert schedules.learning_rate(4, PEAK, WARMUP, TOTAL) == pytest.approx(PEAK * 4 / 9)
    # the cosine starts at the peak on the first step after warm-up
    assert schedules.learning_rate(WARMUP, PEAK, WARMUP, TOTAL) == pytest.approx(PEAK)


def test_learning_rate_last_step_is_the_official_cosine_value():
    last = TOTAL - 1
    span = TOTAL - WARMUP
    expected = 1e-6 + 0.5 * (PEAK - 1e-6) * (1 + math.cos(math.pi * (span - 1) / span))
    assert schedules.learning_rate(last, PEAK, WARMUP, TOTAL) == pytest.approx(expected)
    assert schedules.learning_rate(last, PEAK, WARMUP, TOTAL) < 1e-5
    # past the end the last value holds
    assert schedules.learning_rate(10 * TOTAL, PEAK, WARMUP, TOTAL) == pytest.approx(expected)


def test_learning_rate_without_warmup_and_bad_lengths():
    assert schedules.learning_rate(0, PEAK, 0, TOTAL) == pytest.approx(PEAK)
    with pytest.raises(ValueError, match="warm-up .* must be shorter than the run"):
        schedules.learning_rate(0, PEAK, TOTAL, TOTAL)
    with pytest.raises(ValueError, match="at least 1 step"):
        schedules.learning_rate(0, PEAK, 0, 0)


def test_weight_decay_rises_on_a_cosine_from_004_to_04():
    assert schedules.weight_decay(0, TOTAL) == pytest.approx(0.04)
    # no warm-up: at the warm-up boundary it is already on its cosine
    at_warmup = 0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi * WARMUP / TOTAL))
    assert schedules.weight_decay(WARMUP, TOTAL) == pytest.approx(at_warmup)
    last = 0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi * (TOTAL - 1) / TOTAL))
    assert schedules.weight_decay(TOTAL - 1, TOTAL) == pytest.approx(last)
    assert 0.399 < last < 0.4


def test_ema_momentum_rises_from_base_to_one():
    assert schedules.ema_momentum(0, TOTAL, 0.99) == pytest.approx(0.99)
    half = schedules.ema_momentum(TOTAL // 2, TOTAL, 0.99)
    assert half == pytest.approx(0.995)
    at_warmup = 1 - (1 - 0.99) * (1 + math.cos(math.pi * WARMUP / TOTAL)) / 2
    assert schedules.ema_momentum(WARMUP, TOTAL, 0.99) == pytest.approx(at_warmup)
    last = schedules.ema_momentum(TOTAL - 1, TOTAL, 0.99)
    assert 0.99999 < last < 1.0
    assert schedules.ema_momentum(TOTAL + 5, TOTAL, 0.99) == pytest.approx(last)
