"""The emotion classifier (Keras 3 on TensorFlow).

Two views of one set of weights:
  * ``build_classifier()`` maps log-mel frames (batch, T, MEL_BANDS) to class
    probabilities; training runs on it with features cached once by the SAME
    ``features.LogMel`` layer that the serving graph uses.
  * ``build_serving(classifier)`` prepends ``LogMel`` so the exported model takes
    the raw 16 kHz waveform (batch, WINDOW_SAMPLES); this is what is saved as
    ``ml/emotion_model.keras`` and converted to ``ml/emotion_model.tflite``.

Architecture: per-window gain normalisation (the loudest frame at 0 dB), a small
VGG-style 2-D CNN (4 conv blocks, 16-32-64-128 channels), frequency collapse,
and attentive statistics pooling over time (weighted mean and standard deviation),
then a dropout-regularised dense head.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from ml import params
from ml.features import LogMel


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
        c = input_shape[-1]
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
                     head="flat", n_frames=None) -> keras.Model:
    inp = keras.Input((n_frames, params.MEL_BANDS), name="logmel")
    x = UtteranceNorm(norm, name="utt_norm")(inp)
    x = layers.BatchNormalization(name="in_bn")(x)          # per-band scale
    x = layers.Reshape((-1, params.MEL_BANDS, 1), name="to_image")(x)
    pools = [(2, 2), (2, 2), (2, 2), (1, 2)]
    for i, (ch, pool) in enumerate(zip(channels, pools)):
        x = _block(x, ch, pool, f"b{i + 1}", l2)
    if head == "flat":
        # keep where in frequency the energy lies: (B, T', F', C) -> (B, T', F'*C) -> dense
        f = params.MEL_BANDS // 16
        x = layers.Reshape((-1, f * channels[-1]), name="flatten_freq")(x)
        x = layers.Dense(128, use_bias=False, name="frame_fc")(x)
        x = layers.BatchNormalization(name="frame_bn")(x)
        x = layers.ReLU(name="frame_relu")(x)
    else:
        # collapse frequency: (B, T', F', C) -> (B, T', C)
        x = FreqMean(name="freq_mean")(x)
    x = AttentiveStatsPool(64, name="att_pool")(x)
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Dense(128, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout, name="drop2")(x)
    out = layers.Dense(params.NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="emotion_classifier")


@keras.saving.register_keras_serializable(package="ml")
class FreqMean(layers.Layer):
    def call(self, x):
        return tf.reduce_mean(x, axis=2)


def build_serving(classifier: keras.Model) -> keras.Model:
    """Waveform (batch, WINDOW_SAMPLES) float32 at 16 kHz -> probabilities."""
    wav = keras.Input((params.WINDOW_SAMPLES,), name="waveform")
    probs = classifier(LogMel(name="logmel")(wav))
    return keras.Model(wav, probs, name="emotion_model")


def to_tflite(serving: keras.Model) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(serving)
    return conv.convert()
