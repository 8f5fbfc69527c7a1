"""Online, unlabelled adaptation to each speaker: statistics of their earlier speech.

A speaker's statistics are the per-band mean and variance of the log-mel frames of
their speech (frames within ACTIVE_RANGE of each window's loudest frame), with the
number of frames they summarise.  The model takes them as a second input and
normalises each window by a blend of them and the window's own statistics
(``model.SpeakerNorm``): with no history (cold start) that is the window's own
per-band normalisation; the more of a speaker's speech has been heard, the more
their own voice is the reference.  The serving model also returns each window's
statistics, so the caller updates a speaker's history without TensorFlow.

Pure numpy; used by training (history sampled from other clips of the speaker),
evaluation, ``ml.predict --adapt`` and the workers.
"""
from __future__ import annotations

import numpy as np

from ml import params

ACTIVE_RANGE = 6.9          # ln power units: 30 dB below the window's loudest frame
WINDOW_WEIGHT = 150.0       # frames: weight of a window's own statistics in the blend
MAX_FRAMES = 30000.0        # history cap (10 min of speech): older speech fades out
STATS_SIZE = 2 * params.MEL_BANDS + 1   # [mean (64), variance (64), frame count]


def empty() -> np.ndarray:
    """No history: the cold-start input."""
    return np.zeros(STATS_SIZE, np.float32)


def active_frames(logmel: np.ndarray) -> np.ndarray:
    """Boolean mask of the frames of speech: within ACTIVE_RANGE of the loudest."""
    energy = logmel.mean(axis=-1)
    return energy > energy.max() - ACTIVE_RANGE


def frame_stats(logmel: np.ndarray) -> np.ndarray:
    """Statistics of one stretch of log-mel frames (T, MEL_BANDS): its speech frames."""
    x = logmel[active_frames(logmel)].astype(np.float64)
    out = empty()
    if len(x):
        out[:params.MEL_BANDS] = x.mean(axis=0)
        out[params.MEL_BANDS:-1] = x.var(axis=0)
        out[-1] = len(x)
    return out


def merge(history: np.ndarray, new: np.ndarray, cap: float = MAX_FRAMES) -> np.ndarray:
    """History updated with new statistics (both [mean, var, count]).  Past ``cap``
    frames the history is down-weighted so that it follows slow changes of voice and room."""
    history = np.asarray(history, np.float64)
    new = np.asarray(new, np.float64)
    n_h, n_w = history[-1], new[-1]
    if n_w <= 0:
        return history.astype(np.float32)
    if n_h <= 0:
        return new.astype(np.float32)
    b = params.MEL_BANDS
    n = n_h + n_w
    mean = (n_h * history[:b] + n_w * new[:b]) / n
    second = (n_h * (history[b:-1] + history[:b] ** 2) + n_w * (new[b:-1] + new[:b] ** 2)) / n
    out = np.concatenate([mean, np.maximum(second - mean ** 2, 0.0), [min(n, cap)]])
    return out.astype(np.float32)


def merge_all(stats) -> np.ndarray:
    """Pooled statistics of several stretches (no cap: used to build training histories)."""
    out = empty()
    for s in stats:
        out = merge(out, s, cap=np.inf)
    return out


def valid(stats) -> bool:
    """A stored vector is usable: the right size, finite, variances and count >= 0."""
    try:
        s = np.asarray(stats, np.float64)
    except (TypeError, ValueError):
        return False
    return (s.shape == (STATS_SIZE,) and bool(np.all(np.isfinite(s)))
            and bool(np.all(s[params.MEL_BANDS:] >= 0)))
