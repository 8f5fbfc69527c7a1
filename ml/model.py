"""The emotion classifier (Keras 3 on TensorFlow).

Two views of one set of weights:
  * ``build_classifier()`` maps log-mel frames (batch, T, MEL_BANDS) and the speaker's
    statistics (batch, adapt.STATS_SIZE) to class logits; training runs on it with
    features cached once by the SAME ``features.LogMel`` layer that serving uses.
  * ``build_serving(classifier, temperature)`` prepends ``LogMel`` and appends the
    calibrated softmax: inputs the raw 16 kHz waveform (batch, WINDOW_SAMPLES) and the
    speaker statistics; outputs the probabilities and the window's own statistics
    (to update the speaker's history).  Saved as ``ml/emotion_model.keras`` and
    converted to ``ml/emotion_model.tflite``.

Architecture: two views of the log-mel image stacked as channels: per-window gain
normalisation (the loudest frame at 0 dB: level-free, keeps the spectral shape) and
speaker normalisation (``SpeakerNorm``: each band standardised by the speaker's
statistics blended with the window's own); a small VGG-style 2-D CNN (4 conv blocks,
16-32-64-128 channels), attentive statistics pooling over time (weighted mean and
standard deviation), then a dropout-regularised dense head.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from ml import adapt, params
from ml.features import LogMel


def _window_moments(x):
    """Speech-frame mask, count, mean and second moment of (B, T, MEL_BANDS) log-mel:
    the same frames as ``adapt.active_frames``."""
    energy = tf.reduce_mean(x, axis=2)
    mask = tf.expand_dims(tf.cast(
        energy > tf.reduce_max(energy, axis=1, keepdims=True) - adapt.ACTIVE_RANGE, x.dtype), 2)
    n = tf.reduce_sum(mask, axis=1)                                  # (B, 1)
    mean = tf.reduce_sum(mask * x, axis=1) / n
    second = tf.reduce_sum(mask * tf.square(x), axis=1) / n
    return n, mean, second


@keras.saving.register_keras_serializable(package="ml")
class SpeakerNorm(layers.Layer):
    """[log-mel (B, T, F), speaker stats (B, 2F+1)] -> log-mel standardised per band.

    The reference mean and variance blend the speaker's history (weight: its frame
    count) with the window's own speech frames (weight: adapt.WINDOW_WEIGHT), so a
    cold start (count 0) is per-window normalisation and a long history is the
    speaker's voice."""

    def call(self, inputs):
        x, spk = inputs
        b = params.MEL_BANDS
        n_h = spk[:, -1:]
        mu_h, var_h = spk[:, :b], spk[:, b:2 * b]
        _, mu_w, second_w = _window_moments(x)
        w = adapt.WINDOW_WEIGHT
        mean = (n_h * mu_h + w * mu_w) / (n_h + w)
        second = (n_h * (var_h + tf.square(mu_h)) + w * second_w) / (n_h + w)
        var = tf.maximum(second - tf.square(mean), 0.0)
        # expand_dims, not [:, None, :]: a new-axis slice is no TFLite builtin
        return (x - tf.expand_dims(mean, 1)) * tf.expand_dims(tf.math.rsqrt(var + 1e-2), 1)


@keras.saving.register_keras_serializable(package="ml")
class WindowStats(layers.Layer):
    """(B, T, F) log-mel -> (B, 2F+1) [mean, variance, count] of its speech frames:
    what ``adapt.frame_stats`` computes, returned by the serving model."""

    def call(self, x):
        n, mean, second = _window_moments(x)
        return tf.concat([mean, tf.maximum(second - tf.square(mean), 0.0), n], axis=1)


@keras.saving.register_keras_serializable(package="ml")
class Temperature(layers.Layer):
    """Calibrated probabilities: softmax(logits / T), T fitted after training."""

    def __init__(self, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, logits):
        return tf.nn.softmax(logits / self.temperature, axis=-1)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="ml")
class UtteranceNorm(layers.Layer):
    """Per-window gain normalisation of log-mel frames.

    mode "gain": subtract one scalar, the largest frame energy (mean over bands) of
    the window, so the loudest frame sits at 0 dB whatever the input gain; the
    spectral shape (tilt, formants), an emotion cue, is kept.
    mode "band": subtract each band's mean over time (cepstral-mean style); removes
    the channel but also the utterance's average spectral shape.
    """

    def __init__(self, mode="gain", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x):
        if self.mode == "band":
            return x - tf.reduce_mean(x, axis=1, keepdims=True)
        frame = tf.reduce_mean(x, axis=2, keepdims=True)          # (B, T, 1)
        return x - tf.reduce_max(frame, axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="ml")
class AttentiveStatsPool(layers.Layer):
    """(batch, T, C) -> (batch, 2C): attention-weighted mean and std over time."""

    def __init__(self, hidden=64, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        self.att1 = layers.Dense(self.hidden, activation="tanh")
        self.att2 = layers.Dense(1)
        self.att1.build(input_shape)
        self.att2.build((*input_shape[:-1], self.hidden))

    def call(self, x):
        w = tf.nn.softmax(self.att2(self.att1(x)), axis=1)       # (B, T, 1)
        mean = tf.reduce_sum(w * x, axis=1)
        var = tf.reduce_sum(w * tf.square(x), axis=1) - tf.square(mean)
        std = tf.sqrt(tf.maximum(var, 1e-6))
        return tf.concat([mean, std], axis=-1)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


def _block(x, ch, pool, name, l2):
    reg = keras.regularizers.l2(l2) if l2 else None
    x = layers.Conv2D(ch, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        x = layers.MaxPooling2D(pool, name=f"{name}_pool")(x)
    return x


def build_classifier(channels=(16, 32, 64, 128), dropout=0.3, l2=1e-4, norm="gain",
                     n_frames=None) -> keras.Model:
    inp = keras.Input((n_frames, params.MEL_BANDS), name="logmel")
    spk = keras.Input((adapt.STATS_SIZE,), name="speaker_stats")
    g = UtteranceNorm(norm, name="utt_norm")(inp)
    g = layers.BatchNormalization(name="in_bn")(g)          # per-band scale
    s = SpeakerNorm(name="speaker_norm")([inp, spk])
    x = layers.Concatenate(name="views")([layers.Reshape((-1, params.MEL_BANDS, 1))(g),
                                          layers.Reshape((-1, params.MEL_BANDS, 1))(s)])
    pools = [(2, 2), (2, 2), (2, 2), (1, 2)]
    for i, (ch, pool) in enumerate(zip(channels, pools)):
        x = _block(x, ch, pool, f"b{i + 1}", l2)
    # keep where in frequency the energy lies: (B, T', F', C) -> (B, T', F'*C) -> dense
    f = params.MEL_BANDS // 16
    x = layers.Reshape((-1, f * channels[-1]), name="flatten_freq")(x)
    x = layers.Dense(128, use_bias=False, name="frame_fc")(x)
    x = layers.BatchNormalization(name="frame_bn")(x)
    x = layers.ReLU(name="frame_relu")(x)
    x = AttentiveStatsPool(64, name="att_pool")(x)
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Dense(128, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout, name="drop2")(x)
    out = layers.Dense(params.NUM_CLASSES, name="logits")(x)
    return keras.Model([inp, spk], out, name="emotion_classifier")


def build_serving(classifier: keras.Model, temperature: float = 1.0) -> keras.Model:
    """[waveform (batch, WINDOW_SAMPLES) float32 at 16 kHz, speaker stats (batch, STATS_SIZE)]
    -> [probabilities (batch, NUM_CLASSES), the window's stats (batch, STATS_SIZE)]."""
    wav = keras.Input((params.WINDOW_SAMPLES,), name="waveform")
    spk = keras.Input((adapt.STATS_SIZE,), name="speaker_stats")
    mel = LogMel(name="logmel")(wav)
    probs = Temperature(temperature, name="probs")(classifier([mel, spk]))
    stats = WindowStats(name="window_stats")(mel)
    return keras.Model([wav, spk], [probs, stats], name="emotion_model")


def to_tflite(serving: keras.Model) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(serving)
    return conv.convert()
