"""ml/history_skew.py: the histories it scores with; ml/codec.py: the phone channel it also scores on."""
import numpy as np
import pytest

from ml import adapt, params
from ml.codec import phone_call
from ml.history_skew import HISTORY_CLIPS, history_for


def _stats(level):
    """A clip's statistics: 10 speech frames around this level in every band, varying as speech does."""
    s = adapt.empty()
    s[:adapt.B] = level
    s[adapt.B:2 * adapt.B] = 4.0
    s[adapt.MEL_COUNT] = 10
    return s


def test_a_history_never_holds_the_clip_it_scores():
    stats = [_stats(1000.0)] + [_stats(float(j)) for j in range(1, 4)]
    h = history_for(0, [0, 1, 2, 3], stats, np.random.default_rng(0))
    assert h[adapt.MEL_COUNT] == 30
    assert h[:adapt.B] == pytest.approx(np.full(adapt.B, 2.0))


def test_a_history_holds_at_most_history_clips_and_none_without_others():
    stats = [_stats(float(j)) for j in range(20)]
    h = history_for(5, list(range(20)), stats, np.random.default_rng(1))
    assert h[adapt.MEL_COUNT] == 10 * HISTORY_CLIPS
    assert not history_for(3, [3], stats, np.random.default_rng(2)).any()


def test_the_phone_channel_keeps_speech_band_and_cuts_above_4_khz():
    t = np.arange(params.SAMPLE_RATE) / params.SAMPLE_RATE
    low, high = 0.3 * np.sin(2 * np.pi * 1000 * t), 0.3 * np.sin(2 * np.pi * 6000 * t)
    call = phone_call((low + high).astype(np.float32))
    assert call.shape == low.shape and call.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(call[2000:-2000]))
    freqs = np.fft.rfftfreq(len(call) - 4000, 1 / params.SAMPLE_RATE)
    assert spectrum[np.abs(freqs - 1000) < 50].max() > 100 * spectrum[np.abs(freqs - 6000) < 50].max()
