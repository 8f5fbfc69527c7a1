"""Input contract and silence gate of ml.inference, on generated audio."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ml import params
from ml.inference import (
    AudioInputError,
    AudioTooShortError,
    EmotionRecognizer,
    EmptyAudioError,
    InvalidAudioError,
    NonFiniteAudioError,
    is_silent,
)

SR = params.SAMPLE_RATE


def voice(seconds=2.0, sr=SR, f0=160.0, seed=0, level=0.3):
    """A crude voiced sound: harmonics of a wobbling f0, syllable-like envelope, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    x = x * env + 0.02 * rng.standard_normal(len(t))
    return (level * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def rec():
    return EmotionRecognizer.load()


def check_reading(r):
    assert r["silence"] is False
    probs = r["probabilities"]
    assert list(probs) == list(params.CLASSES)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert r["dominant"] == max(probs, key=probs.get)
    assert r["confidence"] == pytest.approx(probs[r["dominant"]])
    assert -1.0 <= r["valence"] <= 1.0 and -1.0 <= r["arousal"] <= 1.0
    assert 0.0 <= r["intensity"] <= 1.0
    assert r["uncertain"] is (r["confidence"] < params.UNCERTAIN_BELOW)


def test_predict_float_mono(rec):
    check_reading(rec.predict(voice(), SR))


def test_int16_matches_float(rec):
    x = voice()
    i16 = np.round(x * 32767).astype(np.int16)
    a, b = rec.predict(x, SR), rec.predict(i16, SR)
    pa = np.array(list(a["probabilities"].values()))
    pb = np.array(list(b["probabilities"].values()))
    assert np.abs(pa - pb).max() < 0.02


def test_stereo_equals_mono(rec):
    x = voice()
    a = rec.predict(x, SR)
    b = rec.predict(np.stack([x, x], axis=1), SR)      # (n, ch)
    c = rec.predict(np.stack([x, x], axis=0), SR)      # (ch, n) is also understood
    for r in (b, c):
        assert r["dominant"] == a["dominant"]
        assert r["confidence"] == pytest.approx(a["confidence"], abs=1e-4)


def test_other_sample_rates_are_resampled(rec):
    from math import gcd

    from scipy.signal import resample_poly
    x = voice()
    a = rec.predict(x, SR)
    pa = np.array(list(a["probabilities"].values()))
    for sr in (22050, 44100, 48000):     # the same sound at another rate: same opinion
        g = gcd(sr, SR)
        y = resample_poly(x, sr // g, SR // g).astype(np.float32)
        r = rec.predict(y, sr)
        check_reading(r)
        pr = np.array(list(r["probabilities"].values()))
        assert np.abs(pa - pr).max() < 0.05, sr
    check_reading(rec.predict(voice(sr=8000), 8000))   # narrow-band input is accepted


def test_long_input_averages_windows(rec):
    check_reading(rec.predict(voice(seconds=7.3), SR))


@pytest.mark.parametrize("x", [np.zeros(SR * 2, np.float32), np.zeros(SR * 4, np.int16),
                               1e-5 * np.random.default_rng(1).standard_normal(SR * 3)])
def test_silence_is_labelled_not_classified(rec, x):
    r = rec.predict(x, SR)
    assert r["silence"] is True and r["dominant"] == "silence"
    assert r["probabilities"] is None
    assert r["valence"] is None and r["arousal"] is None and r["intensity"] is None


def test_brief_click_in_silence_is_still_silence(rec):
    x = np.zeros(SR * 3, np.float32)
    x[SR: SR + 80] = 0.5
    assert rec.predict(x, SR)["silence"] is True


@pytest.mark.parametrize("bad, exc", [
    (np.array([], np.float32), EmptyAudioError),
    (np.zeros((0, 2), np.float32), EmptyAudioError),
    (np.ones(100, np.float32) * 0.1, AudioTooShortError),
    (np.r_[voice(), np.nan].astype(np.float32), NonFiniteAudioError),
    (np.r_[voice(), np.inf], NonFiniteAudioError),
    ("not audio", InvalidAudioError),
    (b"RIFF....", InvalidAudioError),
    (np.array(["a", "b"] * 8000), InvalidAudioError),
    (np.ones(SR, dtype=complex), InvalidAudioError),
    (np.ones(SR, dtype=bool), InvalidAudioError),
    (np.zeros((2, 2, SR), np.float32), InvalidAudioError),
    ([[0.1, 0.2], [0.3]], InvalidAudioError),
])
def test_bad_input_raises_clear_errors(rec, bad, exc):
    with pytest.raises(exc):
        rec.predict(bad, SR)


@pytest.mark.parametrize("sr", [0, -16000, 16000.5, float("nan"), "16000", None, True])
def test_bad_sample_rate(rec, sr):
    with pytest.raises(AudioInputError):
        rec.predict(voice(), sr)


def test_errors_are_value_errors():
    assert issubclass(AudioInputError, ValueError)
    assert issubclass(InvalidAudioError, TypeError)


def test_predict_batch_matches_predict(rec):
    wins = [voice(3.0, seed=1), np.zeros(SR * 3, np.float32), voice(2.0, f0=240, seed=2)]
    out = rec.predict_batch(wins)
    assert len(out) == 3
    assert out[1]["silence"] is True and out[1]["dominant"] == "silence"
    for w, r in zip((wins[0], wins[2]), (out[0], out[2])):
        check_reading(r)
        single = rec.predict(w, SR)
        assert r["dominant"] == single["dominant"]
        assert r["confidence"] == pytest.approx(single["confidence"], abs=1e-4)
    assert rec.predict_batch([]) == []


def test_timeline_windows_and_silence(rec):
    x = np.concatenate([voice(3.0), np.zeros(SR * 4, np.float32), voice(3.0, seed=3)])  # 10 s
    tl = rec.timeline(x, SR, window_s=3.0, hop_s=1.0)
    assert [s["start"] for s in tl] == [float(i) for i in range(8)]
    assert all(s["end"] - s["start"] == pytest.approx(3.0) for s in tl)
    assert tl[0]["silence"] is False and tl[-1]["silence"] is False
    assert tl[4]["silence"] is True          # 4-7 s is all silence
    for s in tl:
        if not s["silence"]:
            check_reading({k: v for k, v in s.items() if k not in ("start", "end")})


def test_timeline_short_input_gives_one_window(rec):
    tl = rec.timeline(voice(1.5), SR)
    assert len(tl) == 1 and tl[0]["start"] == 0.0 and tl[0]["end"] == pytest.approx(1.5)


def test_serving_does_not_import_tensorflow():
    code = ("import sys, numpy as np; from ml.inference import EmotionRecognizer; "
            "r = EmotionRecognizer.load(); r.predict(np.random.default_rng(0)."
            "standard_normal(32000).astype('float32') * 0.1, 16000); "
            "import ml.affect, ml.params; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_saved_keras_model_loads_and_matches_the_shipped_tflite(rec):
    """The .keras next to the .tflite is the same model: it loads (its in-graph front end
    rebuilds from its saved config) and gives the same probabilities. In a child process, so
    that TensorFlow stays out of this one."""
    window = voice(3.0)
    code = ("import sys, json, numpy as np, keras; from ml import adapt, model; from ml.inference import ML_DIR; "
            "m = keras.models.load_model(ML_DIR / 'emotion_model.keras'); "
            "x = np.array(json.loads(sys.stdin.read()), np.float32)[None, :]; "
            "print(json.dumps(m([x, adapt.empty()[None]])[0].numpy()[0].tolist()))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(window.tolist()), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    keras_probs = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    # Not bit-exact: the .tflite's classifier weights are 8-bit (model.to_tflite: up to 0.009 over
    # 1,200 corpus clips), and float rounding can move a frame's pitch peak to a neighbouring lag
    # or across the voicing threshold; a different model would differ by far more.
    np.testing.assert_allclose(keras_probs, rec.probabilities([window])[0], atol=1e-2)


def test_history_changes_the_reading_and_is_validated(rec):
    from ml import adapt
    w = voice(3.0, seed=4)
    cold = rec.probabilities([w])[0]
    assert np.allclose(cold, rec.probabilities([w], adapt.empty())[0])
    other = adapt.merge(adapt.empty(), rec.speech_stats(voice(3.0, f0=300, seed=5), SR))
    assert other[adapt.MEL_COUNT] > 0 and other[adapt.F0_COUNT] > 0
    assert not np.allclose(cold, rec.probabilities([w], other)[0], atol=1e-4)
    with pytest.raises(InvalidAudioError):
        rec.predict(w, SR, history=np.full(adapt.STATS_SIZE, np.nan))
    with pytest.raises(InvalidAudioError):
        rec.predict(w, SR, history=[1.0, 2.0])


def test_a_streams_window_computes_its_last_second_only_and_reads_the_same(rec):
    """A window a second after the one before takes the two seconds of frames they share
    (`carried`) and computes the last: the same readings and statistics as alone."""
    x = np.concatenate([voice(3.0, seed=1), voice(3.0, f0=220, seed=2)])
    windows = [x[s:s + params.WINDOW_SAMPLES] for s in range(0, len(x) - params.WINDOW_SAMPLES + 1, SR)]
    alone, alone_stats = rec.predict_batch(windows, with_stats=True)
    calls = []
    frames = rec.frames
    rec.frames = lambda *a: calls.append(a[1]) or frames(*a)
    try:
        carried = None
        for w, expected, expected_stats in zip(windows, alone, alone_stats):
            [got], [stats], [carried] = rec.predict_batch([w], carried=[carried])
            assert got == expected
            np.testing.assert_array_equal(stats, expected_stats)
            assert carried.shape == (params.FRAMES_PER_WINDOW - params.FRAME_CHUNK, params.FRAME_FEATURES)
    finally:
        rec.frames = frames
    assert calls == [params.FRAMES_PER_WINDOW] + [params.FRAME_CHUNK] * (len(windows) - 1)
    # nothing is handed on from a silent window, nor from a short one (its last second is padding)
    assert rec.predict_batch([np.zeros(params.WINDOW_SAMPLES, np.float32), voice(2.0)], carried=[None, None])[2] \
        == [None, None]


@pytest.mark.parametrize(("window_s", "hop_s"), [(3.0, 1.0), (3.0, 0.5), (2.0, 0.7), (4.0, 1.0)])
def test_a_recordings_windows_share_their_frames_and_read_as_alone(rec, window_s, hop_s):
    x = np.concatenate([voice(3.0, seed=4), voice(2.5, f0=200, seed=5), voice(1.7, seed=6)])
    timeline = rec.timeline(x, SR, window_s=window_s, hop_s=hop_s)
    starts = [round(w["start"] * SR) for w in timeline]
    alone = rec.probabilities([x[s:s + round(window_s * SR)] for s in starts])
    shared = np.array([[w["probabilities"][c] for c in params.CLASSES] for w in timeline])
    np.testing.assert_allclose(shared, alone, atol=1e-6)


def test_window_stats_from_the_model_match_numpy(rec):
    """The serving graph's window statistics are adapt.frame_stats of its frame features."""
    from ml import adapt
    readings, stats = rec.predict_batch([voice(3.0, seed=6), np.zeros(SR * 3, np.float32)],
                                        with_stats=True)
    assert stats[1] is None and readings[1]["silence"] is True
    s = stats[0]
    assert adapt.valid(s) and 0 < s[adapt.MEL_COUNT] <= params.FRAMES_PER_WINDOW
    assert 0 <= s[adapt.F0_COUNT] <= s[adapt.MEL_COUNT]
    assert np.all(s[params.MEL_BANDS:adapt.MEL_COUNT] >= 0)


@pytest.mark.parametrize(("rms_dbfs", "active_frames", "silent"), [
    (-49.0, 93, False),  # every frame just above the gate
    (-51.0, 93, True),   # every frame just under it
    (-20.0, 9, True),    # loud, but under a tenth of the 93 frames
    (-20.0, 10, False),  # a tenth of them loud
])
def test_the_silence_gate_counts_frames_louder_than_the_threshold(rms_dbfs, active_frames, silent):
    n = params.STFT_WINDOW_SAMPLES
    frames = np.zeros((params.WINDOW_SAMPLES // n, n), np.float32)
    level = 10 ** (rms_dbfs / 20) * np.sqrt(2)  # a sine's peak for that RMS
    frames[:active_frames] = level * np.sin(2 * np.pi * np.arange(n) / n * 10)
    assert is_silent(frames.reshape(-1)) is silent
