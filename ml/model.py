"""The emotion classifier (Keras 3 on TensorFlow).

Two views of one set of weights:
  * ``build_classifier()`` maps frame features (batch, T, FRAME_FEATURES: log-mel, log F0,
    periodicity) and the speaker's statistics (batch, adapt.STATS_SIZE) to class logits;
    training runs on it with features cached once by the SAME ``features.Frontend`` layer
    that serving uses.
  * ``build_serving(classifier, temperature)`` prepends ``Frontend`` and appends the
    calibrated softmax: inputs the raw 16 kHz waveform (batch, WINDOW_SAMPLES) and the
    speaker statistics; outputs the probabilities and the window's own statistics
    (to update the speaker's history).  Saved as ``ml/emotion_model.keras`` and
    converted to ``ml/emotion_model.tflite`` (``to_tflite``: its front end and the rest as
    two signatures, the classifier's weights in 8 bits, the front end in float).

Architecture: two views of the log-mel image stacked as channels: per-window gain
normalisation (the loudest frame at 0 dB: level-free, keeps the spectral shape) and
speaker normalisation (``SpeakerNorm``: each band standardised by the speaker's
statistics blended with the window's own); a small VGG-style 2-D CNN (4 conv blocks,
16-32-64-128 channels), attentive statistics pooling over time (weighted mean and
standard deviation).  Beside it a prosody branch: contours of speaker-relative pitch,
voicing and loudness (``ProsodyContours``) through a small 1-D CNN with attentive pooling,
and their window functionals (pitch level, range and movement relative to the speaker,
voicing, loudness dynamics), the cues that carried furthest across languages in our
measurements (ml/MODEL_CARD.md).  Then a dropout-regularised dense head.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from ml import adapt, params
from ml.features import Frontend


def _speech_mask(x):
    """(B, T, 1) 1.0 on the speech frames of (B, T, MEL_BANDS) log-mel: the same frames as
    ``adapt.active_frames``."""
    energy = tf.reduce_mean(x, axis=2)
    return tf.expand_dims(tf.cast(
        energy > tf.reduce_max(energy, axis=1, keepdims=True) - adapt.ACTIVE_RANGE, x.dtype), 2)


def _voiced_mask(feats):
    """(B, T, 1) 1.0 on the voiced speech frames: ``adapt.voiced_frames``."""
    periodic = tf.cast(feats[:, :, params.PERIODICITY:] > params.VOICED_PERIODICITY, feats.dtype)
    return _speech_mask(feats[:, :, :params.MEL_BANDS]) * periodic


def _moments(x, mask):
    """Count (B, 1), mean and second moment (B, C) of (B, T, C) over the masked frames."""
    n = tf.reduce_sum(mask, axis=1)
    safe = tf.maximum(n, 1.0)
    return n, tf.reduce_sum(mask * x, axis=1) / safe, tf.reduce_sum(mask * tf.square(x), axis=1) / safe


def _window_moments(x):
    """Count, mean and second moment of the speech frames of (B, T, MEL_BANDS) log-mel."""
    return _moments(x, _speech_mask(x))


def _blend(spk, mean_i, var_i, count_i, n_w, mu_w, second_w):
    """Reference mean and variance: the speaker's history (weight: its frame count)
    blended with the window's own statistics (weight: adapt.WINDOW_WEIGHT, or fewer when
    the window has fewer frames of that kind)."""
    n_h = spk[:, count_i:count_i + 1]
    mu_h, var_h = spk[:, mean_i], spk[:, var_i]
    w = tf.minimum(n_w, adapt.WINDOW_WEIGHT)
    total = tf.maximum(n_h + w, 1.0)
    mean = (n_h * mu_h + w * mu_w) / total
    second = (n_h * (var_h + tf.square(mu_h)) + w * second_w) / total
    return mean, tf.maximum(second - tf.square(mean), 0.0)


@keras.saving.register_keras_serializable(package="ml")
class LogMelColumns(layers.Layer):
    """(B, T, F) -> (B, T, bands): the first `bands` columns, i.e. the log-mel part of the frame
    features (FRAME_FEATURES), or the lowest bands of a normalised log-mel view (MEL_BANDS)."""

    def __init__(self, bands=params.MEL_BANDS, **kwargs):
        super().__init__(**kwargs)
        self.bands = bands

    def call(self, x):
        return x[:, :, :self.bands]

    def get_config(self):
        return {**super().get_config(), "bands": self.bands}


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
        mean, var = _blend(spk, slice(0, b), slice(b, 2 * b), adapt.MEL_COUNT, *_window_moments(x))
        # expand_dims, not [:, None, :]: a new-axis slice is no TFLite builtin
        return (x - tf.expand_dims(mean, 1)) * tf.expand_dims(tf.math.rsqrt(var + 1e-2), 1)


@keras.saving.register_keras_serializable(package="ml")
class ProsodyContours(layers.Layer):
    """[frame features (B, T, FRAME_FEATURES), speaker stats] -> [contours (B, T, 4),
    functionals (B, 7)].

    Contours per frame: log F0 standardised by the speaker's pitch (history blended with
    the window's voiced frames; 0 where unvoiced), voicing, periodicity and loudness
    relative to the window's loudest frame (speech frames only).  Functionals of the
    window: mean and standard deviation of the relative pitch (level and range against
    the speaker's own), mean absolute pitch movement, voiced share of speech, mean
    periodicity, and the spread and mean absolute change of loudness."""

    def call(self, inputs):
        feats, spk = inputs
        b = params.MEL_BANDS
        speech = _speech_mask(feats[:, :, :b])
        voiced = _voiced_mask(feats)
        f0 = feats[:, :, params.LOG_F0:params.LOG_F0 + 1]
        mean, var = _blend(spk, slice(adapt.F0_MEAN, adapt.F0_MEAN + 1),
                           slice(adapt.F0_VAR, adapt.F0_VAR + 1), adapt.F0_COUNT, *_moments(f0, voiced))
        rel_f0 = voiced * (f0 - tf.expand_dims(mean, 1)) * tf.expand_dims(tf.math.rsqrt(var + 1e-3), 1)
        energy = tf.reduce_mean(feats[:, :, :b], axis=2, keepdims=True)
        loud = speech * (energy - tf.reduce_max(energy, axis=1, keepdims=True)) / adapt.ACTIVE_RANGE
        periodicity = speech * feats[:, :, params.PERIODICITY:]
        contours = tf.concat([rel_f0, voiced, periodicity, loud], axis=2)

        n_v, f0_mean, f0_second = _moments(rel_f0, voiced)
        n_s, loud_mean, loud_second = _moments(loud, speech)
        both = voiced[:, 1:] * voiced[:, :-1]
        f0_move = tf.reduce_sum(both * tf.abs(rel_f0[:, 1:] - rel_f0[:, :-1]), axis=1) / tf.maximum(
            tf.reduce_sum(both, axis=1), 1.0)
        pairs = speech[:, 1:] * speech[:, :-1]
        loud_move = tf.reduce_sum(pairs * tf.abs(loud[:, 1:] - loud[:, :-1]), axis=1) / tf.maximum(
            tf.reduce_sum(pairs, axis=1), 1.0)
        functionals = tf.concat([
            f0_mean, tf.sqrt(tf.maximum(f0_second - tf.square(f0_mean), 0.0) + 1e-6), f0_move,
            n_v / tf.maximum(n_s, 1.0), tf.reduce_sum(periodicity, axis=1) / tf.maximum(n_s, 1.0),
            tf.sqrt(tf.maximum(loud_second - tf.square(loud_mean), 0.0) + 1e-6), loud_move], axis=1)
        return contours, functionals


@keras.saving.register_keras_serializable(package="ml")
class WindowStats(layers.Layer):
    """(B, T, FRAME_FEATURES) -> (B, STATS_SIZE): the statistics of the window's speech
    frames that ``adapt.frame_stats`` computes, returned by the serving model."""

    def call(self, feats):
        n, mean, second = _window_moments(feats[:, :, :params.MEL_BANDS])
        f0 = feats[:, :, params.LOG_F0:params.LOG_F0 + 1]
        n_v, f0_mean, f0_second = _moments(f0, _voiced_mask(feats))
        return tf.concat([mean, tf.maximum(second - tf.square(mean), 0.0), n,
                          f0_mean, tf.maximum(f0_second - tf.square(f0_mean), 0.0), n_v], axis=1)


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


@keras.saving.register_keras_serializable(package="ml")
class MixStyle(layers.Layer):
    """Training only: with probability `p` per batch, each example's style (per channel, the
    mean and standard deviation of its feature map over time and frequency: the microphone,
    the room, the timbre of the voice, the corpus) is mixed with another example's of the batch
    (Zhou et al., "Domain generalization with MixStyle", ICLR 2021), with a weight drawn from
    Beta(alpha, alpha); the content stays. A batch mixes corpora, so most pairs cross them:
    the layers after it learn from styles between and beyond the training corpora's. The
    identity at inference (nothing in the serving model)."""

    def __init__(self, p=0.5, alpha=0.1, **kwargs):
        super().__init__(**kwargs)
        self.p, self.alpha = float(p), float(alpha)

    def call(self, x, training=False):
        if not training or self.p <= 0:
            return x
        mu = tf.stop_gradient(tf.reduce_mean(x, axis=[1, 2], keepdims=True))
        sig = tf.stop_gradient(tf.sqrt(tf.math.reduce_variance(x, axis=[1, 2], keepdims=True) + 1e-6))
        shape = tf.stack([tf.shape(x)[0], 1, 1, 1])
        a, b = tf.random.gamma(shape, self.alpha), tf.random.gamma(shape, self.alpha)
        lam = a / tf.maximum(a + b, 1e-12)
        perm = tf.random.shuffle(tf.range(tf.shape(x)[0]))
        mixed = (x - mu) / sig * (lam * sig + (1 - lam) * tf.gather(sig, perm)) + (
            lam * mu + (1 - lam) * tf.gather(mu, perm))
        return tf.where(tf.random.uniform([]) < self.p, mixed, x)

    def get_config(self):
        return {**super().get_config(), "p": self.p, "alpha": self.alpha}


def _block(x, ch, pool, name, l2, separable=False, instance_norm=False):
    reg = keras.regularizers.l2(l2) if l2 else None
    if separable:  # a 3x3 filter per channel, then a 1x1 mix: an eighth of the multiplies
        x = layers.SeparableConv2D(ch, 3, padding="same", use_bias=False, pointwise_regularizer=reg,
                                   name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(ch, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                          name=f"{name}_conv")(x)
    if instance_norm:
        # IBN-Net (Pan et al., ECCV 2018): half the channels normalised per example over time and
        # frequency, which removes each clip's level of every filter (the microphone, the room,
        # the corpus), the other half batch-normalised, which keeps what tells classes apart
        half = ch // 2
        x = layers.Concatenate(name=f"{name}_ibn")([
            layers.GroupNormalization(half, name=f"{name}_in")(x[..., :half]),
            layers.BatchNormalization(name=f"{name}_bn")(x[..., half:])])
    else:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        x = layers.MaxPooling2D(pool, name=f"{name}_pool")(x)
    return x


def _prosody_branch(contours, functionals, l2):
    reg = keras.regularizers.l2(l2) if l2 else None
    x = contours
    for i, ch in enumerate((32, 64)):
        x = layers.Conv1D(ch, 5, padding="same", use_bias=False, kernel_regularizer=reg,
                          name=f"p{i + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"p{i + 1}_bn")(x)
        x = layers.ReLU(name=f"p{i + 1}_relu")(x)
        x = layers.MaxPooling1D(2, name=f"p{i + 1}_pool")(x)
    x = AttentiveStatsPool(32, name="p_att_pool")(x)
    return layers.Concatenate(name="prosody")([x, layers.BatchNormalization(name="func_bn")(functionals)])


def build_classifier(channels=(16, 32, 64, 128), dropout=0.3, l2=1e-4, norm="gain",
                     n_frames=None, mixstyle=0.0, gain_view=True, bands=params.MEL_BANDS,
                     separable_from=0, instance_norm=0, spectral_dropout=0.0, time_pool=1,
                     fine_time=0) -> keras.Model:
    feats = keras.Input((n_frames, params.FRAME_FEATURES), name="frames")
    spk = keras.Input((adapt.STATS_SIZE,), name="speaker_stats")
    inp = LogMelColumns(name="logmel")(feats)
    views = []
    # without the gain-normalised view the network sees each band only relative to the speaker
    # (or, cold, to the window): the microphone's and room's colouring is gone from its input
    if gain_view:
        g = UtteranceNorm(norm, name="utt_norm")(inp)
        views.append(layers.BatchNormalization(name="in_bn")(g))          # per-band scale
    views.append(SpeakerNorm(name="speaker_norm")([inp, spk]))
    if bands < params.MEL_BANDS:  # the CNN hears only the lowest bands (normalised over all of them)
        views = [LogMelColumns(bands, name=f"low_bands_{i}")(v) for i, v in enumerate(views)]
    x = layers.Concatenate(name="views")([layers.Reshape((-1, bands, 1))(v) for v in views])
    if time_pool > 1:
        # the CNN on frames averaged in time (40 ms apart at 2): each block's arithmetic divided by
        # time_pool, for cores whose classifier is most of a window's CPU (docs/BENCHMARKS.md)
        x = layers.AveragePooling2D((time_pool, 1), name="time_pool")(x)
    # fine_time: how many of the first blocks pool in frequency only, so that the blocks after them
    # convolve 20 ms steps where they would 40 ms ones (time_pool's opposite; twice their arithmetic)
    pools = [(1 if i < fine_time else t, f) for i, (t, f) in enumerate([(2, 2), (2, 2), (2, 2), (1, 2)])]
    for i, (ch, pool) in enumerate(zip(channels, pools)):
        # separable_from: the first block (counted from 1) of depthwise-separable convolutions, 0 for
        # none; the first block's input has two channels (the views), nothing for one to save
        # instance_norm: how many of the first blocks are IBN blocks (_block), 0 for none
        x = _block(x, ch, pool, f"b{i + 1}", l2, 1 < separable_from <= i + 1, i < instance_norm)
        if mixstyle > 0 and i < 2:  # after the first two blocks, where style is still apart from content
            x = MixStyle(mixstyle, name=f"b{i + 1}_mixstyle")(x)
    # keep where in frequency the energy lies: (B, T', F', C) -> (B, T', F'*C) -> dense
    f = bands // 16
    x = layers.Reshape((-1, f * channels[-1]), name="flatten_freq")(x)
    x = layers.Dense(128, use_bias=False, name="frame_fc")(x)
    x = layers.BatchNormalization(name="frame_bn")(x)
    x = layers.ReLU(name="frame_relu")(x)
    x = AttentiveStatsPool(64, name="att_pool")(x)
    if spectral_dropout > 0:
        # training only: a share of the examples classified from prosody alone, whose
        # speaker-relative pitch and loudness carry across corpora best (ml/MODEL_CARD.md, probe)
        x = layers.Dropout(spectral_dropout, noise_shape=(None, 1), name="spectral_drop")(x)
    x = layers.Concatenate(name="spectral_prosody")(
        [x, _prosody_branch(*ProsodyContours(name="prosody_contours")([feats, spk]), l2)])
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Dense(128, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout, name="drop2")(x)
    out = layers.Dense(params.NUM_CLASSES, name="logits")(x)
    return keras.Model([feats, spk], out, name="emotion_classifier")


def build_serving(classifier: keras.Model, temperature: float = 1.0) -> keras.Model:
    """[waveform (batch, WINDOW_SAMPLES) float32 at 16 kHz, speaker stats (batch, STATS_SIZE)]
    -> [probabilities (batch, NUM_CLASSES), the window's stats (batch, STATS_SIZE)]."""
    wav = keras.Input((params.WINDOW_SAMPLES,), name="waveform")
    spk = keras.Input((adapt.STATS_SIZE,), name="speaker_stats")
    feats = Frontend(name="frontend")(wav)
    probs = Temperature(temperature, name="probs")(classifier([feats, spk]))
    stats = WindowStats(name="window_stats")(feats)
    return keras.Model([wav, spk], [probs, stats], name="emotion_model")


def to_tflite(serving: keras.Model) -> bytes:
    """The serving model as a .tflite of two signatures:

    * ``frames``: waveform (1, FRAME_CHUNK_SAMPLES) -> frames (1, FRAME_CHUNK, FRAME_FEATURES),
      the front end on a second's chunk;
    * ``classify``: frames (1, FRAMES_PER_WINDOW, FRAME_FEATURES) and speaker_stats
      (1, STATS_SIZE) -> probabilities (1, NUM_CLASSES) and window_stats (1, STATS_SIZE).

    Windows overlap by two thirds (a 3 s window every second), and each frame depends on its own
    samples only: computed once per stream or recording, the front end costs a third of what
    it cost inside each window's graph (docs/BENCHMARKS.md). ``classify(frames(...))`` is
    ``serving``'s output, the frames of the three chunks 0, 1, 2 s into the window.

    The classifier's weights are in 8 bits (dynamic range: int8 weights, float activations):
    half the classifier's CPU time per window on a core with 8-bit dot products (0.91 -> 0.41
    ms; ml/MODEL_CARD.md), the same argmax on the test split. The front end stays float: its
    two matrices (mel filters, pitch lags) in 8 bits cost 16 points of UAR on the test split (the
    log of small filter outputs and the pitch peak are fragile), and the converter quantizes
    every large constant operand, so they are put back afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory() as saved:
        _save_halves(serving, saved)
        keys = [params.FRAMES_SIGNATURE, params.CLASSIFY_SIGNATURE]
        plain = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=keys)
        conv = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=keys)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        return _float_frontend(conv.convert(), plain.convert())


def _save_halves(serving: keras.Model, path: str):
    """``serving``'s two halves as the signatures of a SavedModel at ``path``, their weights
    frozen into constants (the converter keeps the variables of a model of several signatures
    as variables, which LiteRT's interpreter does not initialise)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    chunk = keras.Input((params.FRAME_CHUNK_SAMPLES,), batch_size=1, name="waveform")
    frames = keras.Input((params.FRAMES_PER_WINDOW, params.FRAME_FEATURES), batch_size=1, name="frames")
    spk = keras.Input((adapt.STATS_SIZE,), batch_size=1, name="speaker_stats")
    front = keras.Model(chunk, serving.get_layer("frontend")(chunk))
    probs = serving.get_layer("probs")(serving.get_layer("emotion_classifier")([frames, spk]))
    back = keras.Model([frames, spk], [probs, serving.get_layer("window_stats")(frames)])

    def frozen(fn, *specs):
        return convert_variables_to_constants_v2(
            tf.function(fn, input_signature=list(specs), autograph=False).get_concrete_function())

    wave_spec = tf.TensorSpec(chunk.shape, tf.float32, name="waveform")
    frames_spec = tf.TensorSpec(frames.shape, tf.float32, name="frames")
    spk_spec = tf.TensorSpec(spk.shape, tf.float32, name="speaker_stats")
    front_fn = frozen(lambda w: front(w, training=False), wave_spec)
    back_fn = frozen(lambda f, s: back([f, s], training=False), frames_spec, spk_spec)
    # Named outputs: a frozen function's are numbered.
    front_named = tf.function(lambda waveform: {"frames": front_fn(waveform)[0]}, input_signature=[wave_spec],
                              autograph=False)
    back_named = tf.function(lambda frames, speaker_stats: dict(zip(("probabilities", "window_stats"),
                                                                    back_fn(frames, speaker_stats))),
                             input_signature=[frames_spec, spk_spec], autograph=False)
    tf.saved_model.save(tf.Module(), path, signatures={params.FRAMES_SIGNATURE: front_named.get_concrete_function(),
                                                       params.CLASSIFY_SIGNATURE: back_named.get_concrete_function()})


def _float_frontend(quantized: bytes, plain: bytes) -> bytes:
    """``quantized`` with every tensor of the front end (the ``frames`` signature) given back its
    float weights from ``plain`` (the same graphs converted without quantization)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fb

    q, f = fb.convert_bytearray_to_object(quantized), fb.convert_bytearray_to_object(plain)
    [q_front] = [g for g in q.subgraphs if g.name.decode() == params.FRAMES_SIGNATURE]
    [f_front] = [g for g in f.subgraphs if g.name.decode() == params.FRAMES_SIGNATURE]
    floats = {t.name: f.buffers[t.buffer].data for t in f_front.tensors}
    restored = 0
    for t in q_front.tensors:
        if t.type == schema.TensorType.INT8:
            t.type, t.quantization = schema.TensorType.FLOAT32, None
            q.buffers[t.buffer].data = floats[t.name]
            restored += 1
    if not restored:
        raise RuntimeError("no quantized front-end tensor found: the converter's output changed")
    return bytes(fb.convert_object_to_bytearray(q))
