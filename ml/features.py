"""The front end as a Keras layer (tf.signal), part of the model graph.

Per 20 ms frame: the log-mel spectrum (MEL_BANDS values), then log F0 and periodicity
from the frame's normalised autocorrelation (params: "Pitch view").  Training,
evaluation and serving (the exported .tflite) all run this same layer, so there is no
train/serve skew.  The ops used (frame, multiply, RFFT, real/imag, matmul, log, max,
argmax, gather) convert to TFLite builtins, so the LiteRT runtime can serve it without
TensorFlow.
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
        self._mel = tf.constant(mel_matrix())
        lags, lag0 = autocorrelation_matrices()
        self._lags, self._lag0 = tf.constant(lags), tf.constant(lag0[:, None])
        self._log_f0 = tf.constant(np.log(pitch_grid()).astype(np.float32))

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        frames = tf.signal.frame(waveform, params.STFT_WINDOW_SAMPLES, params.STFT_HOP_SAMPLES)
        frames = frames * self._window
        spec = tf.signal.rfft(frames, fft_length=[params.FFT_LENGTH])
        power = tf.square(tf.math.real(spec)) + tf.square(tf.math.imag(spec))
        logmel = tf.math.log(tf.tensordot(power, self._mel, axes=1) + params.LOG_OFFSET)
        acf = tf.tensordot(power, self._lags, axes=1) / (tf.tensordot(power, self._lag0, axes=1) + 1e-10)
        periodicity = tf.reduce_max(acf, axis=-1, keepdims=True)
        log_f0 = tf.expand_dims(tf.gather(self._log_f0, tf.argmax(acf, axis=-1)), -1)
        return tf.concat([logmel, log_f0, periodicity], axis=-1)

    def compute_output_shape(self, input_shape):
        n = input_shape[-1]
        t = None if n is None else 1 + (n - params.STFT_WINDOW_SAMPLES) // params.STFT_HOP_SAMPLES
        return (input_shape[0], t, params.FRAME_FEATURES)
