"""Log-mel front end as a Keras layer (tf.signal), part of the model graph.

Training, evaluation and serving (the exported .tflite) all run this same layer,
so there is no train/serve skew.  The ops used (frame, multiply, RFFT, real/imag, matmul,
log) convert to TFLite builtins, so the LiteRT runtime can serve it without
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


@keras.saving.register_keras_serializable(package="ml")
class LogMel(keras.layers.Layer):
    """(batch, samples) float waveform at 16 kHz -> (batch, frames, MEL_BANDS) log-mel."""

    def __init__(self, **kwargs):
        # No weights to train.  A saved config carries "trainable" (False) already;
        # drop it so that keras.models.load_model can rebuild the layer.
        kwargs.pop("trainable", None)
        super().__init__(trainable=False, **kwargs)
        self._window = tf.constant(
            tf.signal.hann_window(params.STFT_WINDOW_SAMPLES, periodic=True).numpy())
        self._mel = tf.constant(mel_matrix())

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        frames = tf.signal.frame(waveform, params.STFT_WINDOW_SAMPLES, params.STFT_HOP_SAMPLES)
        frames = frames * self._window
        spec = tf.signal.rfft(frames, fft_length=[params.FFT_LENGTH])
        power = tf.square(tf.math.real(spec)) + tf.square(tf.math.imag(spec))
        mel = tf.tensordot(power, self._mel, axes=1)
        return tf.math.log(mel + params.LOG_OFFSET)

    def compute_output_shape(self, input_shape):
        n = input_shape[-1]
        t = None if n is None else 1 + (n - params.STFT_WINDOW_SAMPLES) // params.STFT_HOP_SAMPLES
        return (input_shape[0], t, params.MEL_BANDS)
