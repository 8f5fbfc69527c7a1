"""Serving API: load the shipped model once, predict emotions from waveforms.

    from ml.inference import EmotionRecognizer
    rec = EmotionRecognizer.load()
    rec.predict(waveform, sample_rate)      # any rate, int/float, mono (n,) or (n, ch)
    rec.predict_batch([w16k_a, w16k_b])     # 16 kHz float32 windows, one call
    rec.timeline(waveform, sample_rate, window_s=3.0, hop_s=1.0)

Speaker adaptation (ml/adapt.py): every call takes an optional ``history``, the speaker's
statistics learned from their earlier speech (``adapt.empty()`` or None: cold start);
``predict_batch(..., with_stats=True)`` and ``speech_stats`` also return what a window or
a recording adds to that history (``adapt.merge``), so callers keep it without TensorFlow.

The default runtime is LiteRT (``ai_edge_litert``) running ml/emotion_model.tflite,
which contains the same front end (log-mel and pitch) as the Keras model, as its own
signature: each frame of a recording is computed once for every window that holds it, and a
stream's window takes the frames its previous window handed on (``predict_batch(...,
carried=...)``). TensorFlow is not imported (``backend="tensorflow"`` falls back to tf.lite
if LiteRT is absent).
Every reading carries probabilities over params.CLASSES (calibrated: the model's softmax
has a fitted temperature), the dominant class, its confidence, ``uncertain`` (confidence
below params.UNCERTAIN_BELOW: report it as a guess, not a finding), and
valence/arousal/intensity from ml.affect.  Windows that fail the energy silence gate are
labelled ``"silence"`` and carry no emotion.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from ml import adapt, affect, params

ML_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = ML_DIR / "emotion_model.tflite"


class EmotionModelError(Exception):
    """Base class of this module's errors."""


class ModelLoadError(EmotionModelError):
    """The model file is missing or cannot be loaded."""


class AudioInputError(EmotionModelError, ValueError):
    """The audio given to the recognizer is unusable."""


class EmptyAudioError(AudioInputError):
    """No samples."""


class AudioTooShortError(AudioInputError):
    """Fewer than params.MIN_SECONDS of audio."""


class NonFiniteAudioError(AudioInputError):
    """NaN or infinite samples."""


class InvalidAudioError(AudioInputError, TypeError):
    """Not numeric audio (strings, objects, complex, bool), a bad shape or a bad rate."""


SILENCE_RESULT_KEYS = ("probabilities", "dominant", "confidence", "uncertain", "valence", "arousal",
                       "intensity", "silence")


def silence_result() -> dict:
    return {"probabilities": None, "dominant": "silence", "confidence": None, "uncertain": None,
            "valence": None, "arousal": None, "intensity": None, "silence": True}


def reading(p) -> dict:
    """The reading of one probability vector over params.CLASSES."""
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    k = int(p.argmax())
    out = {"probabilities": {c: float(v) for c, v in zip(params.CLASSES, p)},
           "dominant": params.CLASSES[k], "confidence": float(p[k]),
           "uncertain": bool(p[k] < params.UNCERTAIN_BELOW)}
    out.update(affect.describe(p))
    out["silence"] = False
    return out


def _history(h) -> np.ndarray:
    if h is None:
        return adapt.empty()
    if not adapt.valid(h):
        raise InvalidAudioError(f"speaker history must be {adapt.STATS_SIZE} finite numbers")
    return np.asarray(h, np.float32)


def to_mono_float(waveform, sample_rate) -> np.ndarray:
    """Validate and convert audio to mono float32 at params.SAMPLE_RATE."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)):
        raise InvalidAudioError(f"sample_rate must be a number, got {type(sample_rate).__name__}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise InvalidAudioError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    if isinstance(waveform, (str, bytes, bytearray)):
        raise InvalidAudioError("waveform must be an array of samples, not str/bytes")
    try:
        x = np.asarray(waveform)
    except Exception as exc:  # ragged lists etc.
        raise InvalidAudioError(f"waveform is not an array of samples: {exc}") from None
    if x.dtype == bool or x.dtype.kind not in "iuf":
        raise InvalidAudioError(f"waveform must hold int or float samples, got dtype {x.dtype}")
    if x.ndim == 2:
        if x.shape[1] > x.shape[0] and x.shape[0] <= 8:   # (channels, n) given: transpose
            x = x.T
        if x.shape[1] == 0:
            raise EmptyAudioError("waveform has no channels")
    elif x.ndim != 1:
        raise InvalidAudioError(f"waveform must be (n,) or (n, channels), got shape {x.shape}")
    if x.shape[0] == 0:
        raise EmptyAudioError("waveform is empty")
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)):
            raise NonFiniteAudioError("waveform contains NaN or infinite samples")
        if x.ndim == 2 or sample_rate != params.SAMPLE_RATE:  # mixed or resampled in float64
            x = x.astype(np.float64, copy=False)
    elif x.dtype.kind == "u":
        info = np.iinfo(x.dtype)
        mid = (int(info.max) + 1) / 2
        x = (x.astype(np.float64) - mid) / mid
    else:
        x = x.astype(np.float64) / (float(np.iinfo(x.dtype).max) + 1.0)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.shape[0] < params.MIN_SECONDS * sample_rate:
        raise AudioTooShortError(
            f"{x.shape[0] / sample_rate:.3f} s of audio; at least {params.MIN_SECONDS} s needed")
    if sample_rate != params.SAMPLE_RATE:
        from scipy.signal import resample_poly
        g = math.gcd(sample_rate, params.SAMPLE_RATE)
        x = resample_poly(x, params.SAMPLE_RATE // g, sample_rate // g)
    return np.ascontiguousarray(x, dtype=np.float32)


def is_silent(x16k: np.ndarray) -> bool:
    """Energy gate: True when fewer than SILENCE_MIN_ACTIVE_FRACTION of 32 ms frames
    are louder than SILENCE_RMS_DBFS (dB relative to full scale 1.0)."""
    n = params.STFT_WINDOW_SAMPLES
    usable = (len(x16k) // n) * n
    if usable == 0:
        frames = x16k[None, :]
    else:
        frames = x16k[:usable].reshape(-1, n)
    # Mean squares against the squared threshold, in the samples' float32: a quarter of the CPU of
    # float64 squares (a worker gates every streamed window), 3e-7 apart from them.
    mean_square = np.einsum("ij,ij->i", frames, frames) / frames.shape[1]
    active = mean_square > 10 ** (params.SILENCE_RMS_DBFS / 10)
    return float(active.mean()) < params.SILENCE_MIN_ACTIVE_FRACTION


def is_all_silent(x16k: np.ndarray) -> bool:
    """Whether every 3 s window (hop 0.5 s) of a recording is silent: what predict() reads as
    silence."""
    return all(is_silent(x16k[s:s + params.WINDOW_SAMPLES])
               for s in _window_starts(len(x16k), params.WINDOW_SAMPLES, params.SAMPLE_RATE // 2))


def _window_starts(n_samples: int, win: int, hop: int) -> list[int]:
    if n_samples <= win:
        return [0]
    starts = list(range(0, n_samples - win + 1, hop))
    if starts[-1] + win < n_samples:
        starts.append(n_samples - win)
    return starts


class EmotionRecognizer:
    """Speech emotion recognizer over params.CLASSES.  Thread-safe (one lock).

    The model is two calls (ml/model.py to_tflite): ``frames`` turns each second of audio into
    its frames, ``classify`` turns a window's frames and its speaker's history into a reading.
    Each frame depends on its own 32 ms of samples, and windows a second apart share two
    thirds of their frames, so a recording's frames are computed once for all its windows, and
    a stream's window takes the frames it shares with the one before (``carried``)."""

    classes = params.CLASSES

    def __init__(self, interpreter, model_path: Path, backend: str):
        self.model_path = Path(model_path)
        self.backend = backend
        self._front = interpreter.get_signature_runner(params.FRAMES_SIGNATURE)
        self._classify = interpreter.get_signature_runner(params.CLASSIFY_SIGNATURE)
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, num_threads: int = 1,
             backend: str = "litert") -> "EmotionRecognizer":
        """Load the .tflite model (default: the shipped ml/emotion_model.tflite)."""
        path = Path(path) if path else DEFAULT_MODEL
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        Interpreter = None
        if backend == "litert":
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:
                backend = "tensorflow"
        if backend == "tensorflow":
            import tensorflow as tf
            Interpreter = tf.lite.Interpreter
        if Interpreter is None:
            raise ModelLoadError(f"unknown backend {backend!r}")
        try:
            it = Interpreter(model_path=str(path), num_threads=num_threads)
            signatures = it.get_signature_list()
            if {params.FRAMES_SIGNATURE, params.CLASSIFY_SIGNATURE} - set(signatures):
                raise ValueError(f"signatures {params.FRAMES_SIGNATURE!r} and {params.CLASSIFY_SIGNATURE!r} needed, "
                                 f"found {sorted(signatures)} (convert it again: python -m ml.train --convert)")
            rec = cls(it, path, backend)
        except Exception as exc:
            raise ModelLoadError(f"cannot load {path}: {exc}") from exc
        return rec

    # -- raw model calls ---------------------------------------------------------
    def frames(self, x16k: np.ndarray, n_frames: int) -> np.ndarray:
        """The first n_frames frames of a 16 kHz recording zero-padded at its end, frame i on
        samples [i * STFT_HOP_SAMPLES, i * STFT_HOP_SAMPLES + STFT_WINDOW_SAMPLES):
        (n_frames, FRAME_FEATURES), a second's chunk a call."""
        chunks = -(-n_frames // params.FRAME_CHUNK)
        need = (chunks - 1) * params.SAMPLE_RATE + params.FRAME_CHUNK_SAMPLES
        x = np.asarray(x16k[:need], np.float32)
        if len(x) < need:
            x = np.pad(x, (0, need - len(x)))
        out = np.empty((chunks * params.FRAME_CHUNK, params.FRAME_FEATURES), np.float32)
        with self._lock:
            for c in range(chunks):
                start = c * params.SAMPLE_RATE
                chunk = x[None, start:start + params.FRAME_CHUNK_SAMPLES]
                out[c * params.FRAME_CHUNK:(c + 1) * params.FRAME_CHUNK] = self._front(waveform=chunk)["frames"][0]
        return out[:n_frames]

    def window_frames(self, x16k: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
        """A window's frames as the model reads it (cut or zero-padded to 3 s):
        (FRAMES_PER_WINDOW, FRAME_FEATURES). ``first``: its first frames, known already."""
        x = x16k[:params.WINDOW_SAMPLES]  # frames pads a shorter window with zeros
        known = 0 if first is None else len(first)
        rest = self.frames(x[known * params.STFT_HOP_SAMPLES:], params.FRAMES_PER_WINDOW - known)
        return rest if first is None else np.concatenate([first, rest])

    def _run(self, frames, histories) -> tuple[np.ndarray, np.ndarray]:
        """Windows' frames, (FRAMES_PER_WINDOW, FRAME_FEATURES) each, and their speakers'
        histories -> (n, NUM_CLASSES) probabilities and (n, STATS_SIZE) the windows' own
        statistics. One window a call: on one thread a batch is no faster per window (measured
        by ml.bench), and fixed shapes never re-allocate the interpreter's tensors."""
        histories = [_history(h)[None] for h in histories]
        probs = np.empty((len(frames), params.NUM_CLASSES), np.float32)
        stats = np.empty((len(frames), adapt.STATS_SIZE), np.float32)
        with self._lock:
            for i, f in enumerate(frames):
                out = self._classify(frames=f[None], speaker_stats=histories[i])
                probs[i], stats[i] = out["probabilities"][0], out["window_stats"][0]
        return probs, stats

    def _windows(self, windows16k, histories, carried=None) -> tuple[np.ndarray, np.ndarray, list]:
        """Probabilities, statistics and the frames of each window, each given its first frames
        where ``carried`` has them (windows of one recording go through _recording_windows,
        which shares their frames)."""
        carried = carried or [None] * len(windows16k)
        frames = [self.window_frames(np.asarray(w, np.float32), c) for w, c in zip(windows16k, carried)]
        return *self._run(frames, histories), frames

    def _recording_windows(self, x16k, starts, length, histories) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and statistics of the windows x16k[s:s + length] of one recording, each
        frame computed once for all the windows that share it: those that start on a frame
        boundary and that the model reads as the recording is (3 s of it, or up to its end)."""
        shared = [s % params.STFT_HOP_SAMPLES == 0 and length >= min(len(x16k) - s, params.WINDOW_SAMPLES)
                  for s in starts]
        first = [s // params.STFT_HOP_SAMPLES for s, ok in zip(starts, shared) if ok]
        every = self.frames(x16k, max(first) + params.FRAMES_PER_WINDOW) if first else None
        frames = [every[s // params.STFT_HOP_SAMPLES:][:params.FRAMES_PER_WINDOW] if ok
                  else self.window_frames(x16k[s:s + length]) for s, ok in zip(starts, shared)]
        return self._run(frames, histories)

    def probabilities(self, windows16k, history=None) -> np.ndarray:
        """Probabilities for 16 kHz windows (no silence gate); each window is cut or
        zero-padded to params.WINDOW_SAMPLES."""
        return self._windows(windows16k, [history] * len(windows16k))[0]

    # -- public API ---------------------------------------------------------------
    def predict_batch(self, windows, histories=None, with_stats=False, carried=None):
        """One call for several 16 kHz mono float windows (any length, <= 3 s
        is padded, longer is cut to the first 3 s).  Silent windows -> silence_result().
        ``histories``: one speaker history per window (None: cold).  With ``with_stats``
        returns (readings, stats): stats[i] is what window i adds to its speaker's
        history, None for a silent window.

        ``carried``, for the windows of streams (one entry per window, or None): what the
        stream's previous window, a second earlier, handed on (the frames of this window's first
        two seconds). Then only each window's last second is computed, and the result gains a
        third list: what each window hands on to its stream's next one (None for a silent window
        or one shorter than 3 s)."""
        xs = [to_mono_float(w, params.SAMPLE_RATE) for w in windows]
        histories = [None] * len(xs) if histories is None else list(histories)
        if len(histories) != len(xs):
            raise InvalidAudioError("one speaker history per window is needed")
        if carried is not None and len(carried) != len(xs):
            raise InvalidAudioError("one carried entry (or None) per window is needed")
        voiced = [i for i, x in enumerate(xs) if not is_silent(x)]
        handed = [carried[i] if carried is not None and len(xs[i]) == params.WINDOW_SAMPLES else None
                  for i in voiced]
        probs, stats, frames = self._windows([xs[i] for i in voiced], [histories[i] for i in voiced], handed)
        out = [silence_result() for _ in xs]
        added = [None] * len(xs)
        onward = [None] * len(xs)
        for j, i in enumerate(voiced):
            out[i] = reading(probs[j])
            added[i] = stats[j]
            if len(xs[i]) == params.WINDOW_SAMPLES:
                onward[i] = frames[j][params.FRAME_CHUNK:]
        if carried is not None:
            return out, added, onward
        return (out, added) if with_stats else out

    def clip_probabilities(self, x16k: np.ndarray, history=None) -> tuple[np.ndarray, np.ndarray]:
        """Mean probabilities of a 16 kHz recording's non-silent 3 s windows (hop 0.5 s)
        and the statistics its speech adds to a history (zeros when all silent: probabilities
        are then uniform)."""
        starts = _window_starts(len(x16k), params.WINDOW_SAMPLES, params.SAMPLE_RATE // 2)
        voiced = [s for s in starts if not is_silent(x16k[s:s + params.WINDOW_SAMPLES])]
        if not voiced:
            return np.full(params.NUM_CLASSES, 1.0 / params.NUM_CLASSES), adapt.empty()
        probs, stats = self._recording_windows(x16k, voiced, params.WINDOW_SAMPLES, [history] * len(voiced))
        return probs.mean(axis=0), adapt.merge_all(stats)

    def predict(self, waveform, sample_rate, history=None, with_stats=False):
        """One reading for the whole input.  Up to 3 s: one window (zero-padded);
        longer: the mean probabilities of its non-silent 3 s windows (hop 0.5 s).
        With ``with_stats`` returns (reading, what its speech adds to the speaker's history),
        from the same model calls."""
        x = to_mono_float(waveform, sample_rate)
        probs, added = self.clip_probabilities(x, history)
        # Silence is what the energy gate hears: steady sound adds nothing to a history
        # (adapt.merge) but is read as the gate lets it through.
        out = silence_result() if added[adapt.MEL_COUNT] == 0 and is_all_silent(x) else reading(probs)
        return (out, added) if with_stats else out

    def speech_stats(self, waveform, sample_rate) -> np.ndarray:
        """What a recording adds to its speaker's history: the statistics of its speech."""
        return self.predict(waveform, sample_rate, with_stats=True)[1]

    def timeline(self, waveform, sample_rate, window_s: float = params.WINDOW_SECONDS,
                 hop_s: float = 1.0, history=None) -> list[dict]:
        """Readings over sliding windows: dicts with "start"/"end" seconds plus the
        predict() fields.  Windows shorter than 3 s are zero-padded; longer ones are
        cut to their first 3 s."""
        if not (window_s > 0 and hop_s > 0):
            raise AudioInputError("window_s and hop_s must be positive")
        x = to_mono_float(waveform, sample_rate)
        sr = params.SAMPLE_RATE
        win, hop = int(round(window_s * sr)), int(round(hop_s * sr))
        starts = _window_starts(len(x), win, hop)
        segs = [x[s:s + win] for s in starts]
        silent = [is_silent(s) for s in segs]
        voiced = [s for s, q in zip(starts, silent) if not q]
        probs = iter(self._recording_windows(x, voiced, win, [history] * len(voiced))[0])
        out = []
        for s, seg, q in zip(starts, segs, silent):
            r = silence_result() if q else reading(next(probs))
            out.append({"start": round(s / sr, 3), "end": round((s + len(seg)) / sr, 3), **r})
        return out
