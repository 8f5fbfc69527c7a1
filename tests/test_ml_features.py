"""The front end's power spectrum (two stages of small DFTs) against NumPy's FFT."""
import numpy as np
import pytest

from ml import params


@pytest.fixture(scope="module")
def frontend():
    pytest.importorskip("tensorflow")
    from ml.features import Frontend
    return Frontend()


def test_the_power_spectrum_is_the_fft_s(frontend):
    from ml.features import DFT_BINS
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((2, 7, params.FFT_LENGTH)).astype(np.float32)
    frames[1, 3] = 0  # zero padding: no power at all
    frames[0, 2] *= 1e-4
    expected = np.abs(np.fft.rfft(frames.astype(np.float64), axis=-1)) ** 2
    power = frontend._power(frames).numpy()
    inside = DFT_BINS <= params.FFT_LENGTH // 2
    assert power.shape == (2, 7, DFT_BINS.size) and sorted(DFT_BINS[inside]) == list(range(expected.shape[-1]))
    for got, want in zip(power[..., inside].reshape(-1, inside.sum()),
                         expected[..., DFT_BINS[inside]].reshape(-1, inside.sum())):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(want.max(), 1e-30))
    assert not power[1, 3].any()


def test_the_log_mel_and_pitch_are_those_of_the_fft(frontend):
    """The whole front end against the same computation on NumPy's FFT, in float64."""
    from ml.features import autocorrelation_matrices, mel_matrix, pitch_grid
    t = np.arange(params.WINDOW_SAMPLES) / params.SAMPLE_RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.5 * t)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / params.SAMPLE_RATE) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wave = wave + 0.01 * np.random.default_rng(1).standard_normal(t.size)
    feats = frontend(wave.astype(np.float32)[None]).numpy()[0]
    frames = np.lib.stride_tricks.sliding_window_view(wave, params.STFT_WINDOW_SAMPLES)[::params.STFT_HOP_SAMPLES]
    window = np.hanning(params.STFT_WINDOW_SAMPLES + 1)[:-1]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    logmel = np.log(power @ mel_matrix().astype(np.float64) + params.LOG_OFFSET)
    lags, lag0 = autocorrelation_matrices()
    acf = (power @ lags) / (power @ lag0[:, None] + 1e-10)
    np.testing.assert_allclose(feats[:, :params.MEL_BANDS], logmel, atol=1e-3)
    np.testing.assert_allclose(feats[:, params.PERIODICITY], acf.max(axis=-1), atol=1e-4)
    voiced = acf.max(axis=-1) > params.VOICED_PERIODICITY
    assert voiced.mean() > 0.8
    np.testing.assert_allclose(feats[voiced, params.LOG_F0], np.log(pitch_grid())[acf.argmax(axis=-1)][voiced])
