"""ml/robustness.py: the noise, babble and room it scores the model in."""
import numpy as np
import pytest

from ml import params
from ml.robustness import BABBLE_TALKERS, babble, mix, room, speech_power


def _speech_with_pauses(seed=0):
    """1 s of a loud tone, then 1 s of near silence: speech and its pause."""
    t = np.arange(params.SAMPLE_RATE) / params.SAMPLE_RATE
    rng = np.random.default_rng(seed)
    return np.concatenate([0.5 * np.sin(2 * np.pi * 220 * t), 1e-4 * rng.standard_normal(params.SAMPLE_RATE)])


def test_speech_power_is_the_loud_frames_power_not_the_pauses():
    x = _speech_with_pauses()
    assert speech_power(x) == pytest.approx(0.125, rel=0.01)  # a sine of amplitude 0.5


@pytest.mark.parametrize("snr_db", [20.0, 5.0])
def test_noise_is_mixed_at_the_asked_ratio_to_the_speech(snr_db):
    x = _speech_with_pauses().astype(np.float32)
    y = mix(x, np.random.default_rng(1).standard_normal(len(x)), snr_db)
    noise = (y - x).astype(np.float64)
    assert 10 * np.log10(speech_power(x) / np.mean(noise ** 2)) == pytest.approx(snr_db, abs=0.05)


def test_babble_is_talkers_at_equal_levels():
    rng = np.random.default_rng(2)
    talkers = [rng.standard_normal(8000) * scale for scale in (0.01, 1.0, 100.0, 3.0, 0.5)]
    b = babble(20000, talkers, np.random.default_rng(3))
    assert b.shape == (20000,)
    assert np.mean(b ** 2) == pytest.approx(BABBLE_TALKERS, rel=0.1)  # each talker at unit power


def test_a_room_keeps_level_and_length_and_its_tail_dies_away_over_rt60():
    click = np.zeros(params.SAMPLE_RATE, np.float32)
    click[0] = 1.0
    y = room(click, 0.5, np.random.default_rng(4))
    assert y.shape == click.shape and y.dtype == np.float32
    assert np.mean(y.astype(np.float64) ** 2) == pytest.approx(np.mean(click ** 2), rel=1e-3)
    early = np.mean(y[1:800] ** 2)              # the tail's first 50 ms
    late = np.mean(y[7200:8000] ** 2)           # 450-500 ms: about 54 dB down at an RT60 of 0.5 s
    assert late < early * 1e-4
    assert np.abs(y[8001:]).max() < 1e-6 * np.abs(y).max()  # nothing after the tail but rounding
