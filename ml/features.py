"""The front end as a Keras layer (tf.signal), part of the model graph.

Per 20 ms frame: the log-mel spectrum (MEL_BANDS values), then log F0 and periodicity
from the frame's normalised autocorrelation (params: "Pitch view").  Training,
evaluation and serving (the exported .tflite) all run this same layer, so there is no
train/serve skew.  The ops used (frame, reshape, transpose, multiply, matmul, log, max,
argmax, gather) convert to TFLite builtins, so the LiteRT runtime can serve it without
TensorFlow.

The power spectrum is a fast Fourier transform of two stages of small DFTs, each one matrix
product (Cooley-Tukey, FFT_LENGTH = 16 x 32), rather than tf.signal.rfft: LiteRT's RFFT
kernel (in double precision, one frame at a time) took 0.49 ms of the model's 1.26 ms a
window, the two products about 0.3 ms (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ml import params


def mel_matrix() -> np.ndarray:
    m = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=params.MEL_BANDS,
        num_spectrogram_bins=params.FFT_LENGTH // 2 + 1,
        sample_rate=params.SAMPLE_RATE,
        lower_edge_hertz=params.MEL_MIN_HZ,
        upper_edge_hertz=params.MEL_MAX_HZ)
    return m.numpy().astype(np.float32)


# FFT_LENGTH = N1 x N2: sample n = N2 n1 + n2, bin k = k1 + N1 k2; the bins up to
# FFT_LENGTH / 2 (all a real frame has) need k2 <= K2 - 1.
DFT_N1, DFT_N2 = 16, 32
DFT_K2 = params.FFT_LENGTH // 2 // DFT_N1 + 1
if not params.STFT_WINDOW_SAMPLES == params.FFT_LENGTH == DFT_N1 * DFT_N2:
    raise ImportError("Frontend's DFT takes frames of FFT_LENGTH = DFT_N1 x DFT_N2 samples, unpadded")
# The bin of each value of Frontend's power spectrum, (k1, k2) in order; those beyond
# FFT_LENGTH / 2 mirror others and are weighted zero.
DFT_BINS = (np.arange(DFT_N1)[:, None] + DFT_N1 * np.arange(DFT_K2)[None, :]).reshape(-1)


def dft_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The constants of Frontend's power spectrum. Stage one, for each n2 the N1-point DFT of
    the real samples over n1: (N1, 2 N1), cosines then minus sines by k1. The twiddle factors
    W^(n2 k1), cos and sin (N2, N1). Stage two, for each k1 the N2-point DFT over n2 of the
    complex result, for k2 < K2: (2 N2, 2 K2), real parts then imaginary parts in and out."""
    n1 = np.arange(DFT_N1)
    angle1 = 2 * np.pi * np.outer(n1, n1) / DFT_N1
    stage1 = np.concatenate([np.cos(angle1), -np.sin(angle1)], axis=1)
    twiddle = 2 * np.pi * np.outer(np.arange(DFT_N2), n1) / params.FFT_LENGTH
    angle2 = 2 * np.pi * np.outer(np.arange(DFT_N2), np.arange(DFT_K2)) / DFT_N2
    stage2 = np.block([[np.cos(angle2), -np.sin(angle2)], [np.sin(angle2), np.cos(angle2)]])
    return tuple(m.astype(np.float32) for m in (stage1, np.cos(twiddle), np.sin(twiddle), stage2))


def in_dft_order(matrix: np.ndarray) -> np.ndarray:
    """A matrix over the spectrum's bins (rows 0..FFT_LENGTH/2) with its rows in the order of
    Frontend's power spectrum ((k1, k2), N1 x K2), zero for the k beyond FFT_LENGTH / 2."""
    out = np.zeros((DFT_BINS.size,) + matrix.shape[1:], matrix.dtype)
    inside = DFT_BINS <= params.FFT_LENGTH // 2
    out[inside] = matrix[DFT_BINS[inside]]
    return out


def pitch_grid() -> np.ndarray:
    """The F0 (Hz) of each lag of the pitch view, from high to low (lags increasing)."""
    return np.geomspace(params.PITCH_MAX_HZ, params.PITCH_MIN_HZ, params.PITCH_LAGS)


def autocorrelation_matrices() -> tuple[np.ndarray, np.ndarray]:
    """(bins, lags) and (bins,): power spectrum @ first = autocorrelation at the grid's
    lags, unbiased for the shrinking overlap; power @ second = autocorrelation at lag 0
    (the inverse real FFT of the power spectrum, as matrix products)."""
    n = params.FFT_LENGTH
    k = np.arange(n // 2 + 1)[:, None]
    weight = np.full((n // 2 + 1, 1), 2.0 / n)
    weight[0] = weight[-1] = 1.0 / n
    lags = params.SAMPLE_RATE / pitch_grid()
    lag_matrix = weight * np.cos(2 * np.pi * k * lags[None, :] / n)
    lag_matrix /= 1.0 - lags[None, :] / params.STFT_WINDOW_SAMPLES
    return lag_matrix.astype(np.float32), weight[:, 0].astype(np.float32)


@keras.saving.register_keras_serializable(package="ml")
class Frontend(keras.layers.Layer):
    """(batch, samples) float waveform at 16 kHz -> (batch, frames, FRAME_FEATURES)."""

    def __init__(self, **kwargs):
        # No weights to train.  A saved config carries "trainable" (False) already;
        # drop it so that keras.models.load_model can rebuild the layer.
        kwargs.pop("trainable", None)
        super().__init__(trainable=False, **kwargs)
        self._window = tf.constant(
            tf.signal.hann_window(params.STFT_WINDOW_SAMPLES, periodic=True).numpy())
        self._mel = tf.constant(in_dft_order(mel_matrix()))
        lags, lag0 = autocorrelation_matrices()
        self._lags, self._lag0 = tf.constant(in_dft_order(lags)), tf.constant(in_dft_order(lag0[:, None]))
        self._stage1, self._twiddle_cos, self._twiddle_sin, self._stage2 = map(tf.constant, dft_matrices())
        self._log_f0 = tf.constant(np.log(pitch_grid()).astype(np.float32))

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        frames = tf.signal.frame(waveform, params.STFT_WINDOW_SAMPLES, params.STFT_HOP_SAMPLES)
        power = self._power(frames * self._window)
        logmel = tf.math.log(tf.tensordot(power, self._mel, axes=1) + params.LOG_OFFSET)
        acf = tf.tensordot(power, self._lags, axes=1) / (tf.tensordot(power, self._lag0, axes=1) + 1e-10)
        periodicity = tf.reduce_max(acf, axis=-1, keepdims=True)
        log_f0 = tf.expand_dims(tf.gather(self._log_f0, tf.argmax(acf, axis=-1)), -1)
        return tf.concat([logmel, log_f0, periodicity], axis=-1)

    def _power(self, frames):
        """(..., STFT_WINDOW_SAMPLES) frames -> their power spectrum, (..., N1 K2) in_dft_order."""
        n1, n2, k2 = DFT_N1, DFT_N2, DFT_K2
        x = tf.transpose(tf.reshape(frames, [-1, n1, n2]), [0, 2, 1])              # (., n2, n1)
        a = tf.reshape(tf.reshape(x, [-1, n1]) @ self._stage1, [-1, n2, 2 * n1])  # (., n2, k1 re | im)
        re, im = a[..., :n1], a[..., n1:]
        re, im = (re * self._twiddle_cos + im * self._twiddle_sin,                 # times W^(n2 k1)
                  im * self._twiddle_cos - re * self._twiddle_sin)
        b = tf.transpose(tf.concat([re, im], axis=1), [0, 2, 1])                  # (., k1, n2 re | im)
        c = tf.reshape(tf.reshape(b, [-1, 2 * n2]) @ self._stage2, [-1, n1, 2 * k2])
        power = tf.square(c[..., :k2]) + tf.square(c[..., k2:])                    # (., k1, k2)
        return tf.reshape(power, tf.concat([tf.shape(frames)[:-1], [n1 * k2]], axis=0))

    def compute_output_shape(self, input_shape):
        n = input_shape[-1]
        t = None if n is None else 1 + (n - params.STFT_WINDOW_SAMPLES) // params.STFT_HOP_SAMPLES
        return (input_shape[0], t, params.FRAME_FEATURES)
