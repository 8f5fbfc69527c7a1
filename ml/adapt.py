"""Online, unlabelled adaptation to each speaker: statistics of their earlier speech.

A speaker's statistics summarise the frames of their speech (frames within ACTIVE_RANGE
of each window's loudest frame; a window of steady sound, STEADY_BELOW, adds nothing): the
per-band mean and variance of the log-mel frames with the number of frames they summarise,
then the mean and variance of log F0 over the voiced ones (periodicity above
params.VOICED_PERIODICITY) with their number.  The model takes them as a second input and
normalises each window by a blend of them and the window's own statistics
(``model.SpeakerNorm``, ``model.ProsodyContours``): with no history (cold start) that is the
window's own normalisation; the more of a speaker's speech has been heard, the more their own
voice (its timbre, its usual pitch and pitch range) is the reference.  The serving model also
returns each window's statistics, so the caller updates a speaker's history without TensorFlow.

Pure numpy; used by training (history sampled from other clips of the speaker),
evaluation, ``ml.predict --adapt`` and the workers.
"""
from __future__ import annotations

import numpy as np

from ml import params

ACTIVE_RANGE = 6.9          # ln power units: 30 dB below the window's loudest frame
# Statistics whose frames vary less than this over time (the mean over bands of their log-mel
# variance, ln power units squared) are of a steady sound, not a voice: a fan, hiss, hum. The
# silence gate lets such sound through when it is loud enough, and a minute of a fan learnt as the
# voice took a speaker's adapted UAR under cold (ml/history_skew.py). Measured with the shipped
# front end: every 3 s window of the three corpora's speech 2.55 or more, speech 5 dB above white
# noise 0.83 or more (0.5th percentile), pink, white and brown noise and mains hum 0.3-0.5.
STEADY_BELOW = 0.65
WINDOW_WEIGHT = 150.0       # frames: weight of a window's own statistics in the blend
MAX_FRAMES = 30000.0        # history cap (10 min of speech): older speech fades out

B = params.MEL_BANDS
# [log-mel mean (B), log-mel variance (B), speech frames, log F0 mean, log F0 variance, voiced frames]
MEL_COUNT = 2 * B
F0_MEAN, F0_VAR, F0_COUNT = 2 * B + 1, 2 * B + 2, 2 * B + 3
STATS_SIZE = 2 * B + 4
# (means, variances, count) of each group of statistics
_GROUPS = ((slice(0, B), slice(B, 2 * B), MEL_COUNT),
           (slice(F0_MEAN, F0_MEAN + 1), slice(F0_VAR, F0_VAR + 1), F0_COUNT))


def empty() -> np.ndarray:
    """No history: the cold-start input."""
    return np.zeros(STATS_SIZE, np.float32)


def active_frames(feats: np.ndarray) -> np.ndarray:
    """Boolean mask of the frames of speech: within ACTIVE_RANGE of the loudest."""
    energy = feats[:, :B].mean(axis=-1)
    return energy > energy.max() - ACTIVE_RANGE


def voiced_frames(feats: np.ndarray) -> np.ndarray:
    """Speech frames that are periodic: where log F0 means something."""
    return active_frames(feats) & (feats[:, params.PERIODICITY] > params.VOICED_PERIODICITY)


def frame_stats(feats: np.ndarray) -> np.ndarray:
    """Statistics of one stretch of frames (T, FRAME_FEATURES): its speech frames."""
    out = empty()
    for mask, cols, (mean, var, count) in ((active_frames(feats), slice(0, B), _GROUPS[0]),
                                           (voiced_frames(feats), slice(params.LOG_F0, params.LOG_F0 + 1),
                                            _GROUPS[1])):
        x = feats[mask, cols].astype(np.float64)
        if len(x):
            out[mean] = x.mean(axis=0)
            out[var] = x.var(axis=0)
            out[count] = len(x)
    return out


def is_steady(stats: np.ndarray) -> bool:
    """Whether statistics of some frames are of a steady sound rather than a voice (STEADY_BELOW)."""
    return bool(stats[MEL_COUNT] > 0 and np.mean(stats[B:2 * B]) < STEADY_BELOW)


def merge(history: np.ndarray, new: np.ndarray, cap: float = MAX_FRAMES) -> np.ndarray:
    """History updated with new statistics (both laid out as STATS_SIZE); statistics of a steady
    sound (is_steady) leave it as it is.  Past ``cap`` frames the history is down-weighted so that
    it follows slow changes of voice and room."""
    history = np.asarray(history, np.float64)
    new = np.asarray(new, np.float64)
    out = history.copy()
    if is_steady(new):
        return out.astype(np.float32)
    for mean, var, count in _GROUPS:
        n_h, n_w = history[count], new[count]
        if n_w <= 0:
            continue
        if n_h <= 0:
            out[mean], out[var], out[count] = new[mean], new[var], n_w
            continue
        n = n_h + n_w
        m = (n_h * history[mean] + n_w * new[mean]) / n
        second = (n_h * (history[var] + history[mean] ** 2) + n_w * (new[var] + new[mean] ** 2)) / n
        out[mean], out[var], out[count] = m, np.maximum(second - m ** 2, 0.0), min(n, cap)
    return out.astype(np.float32)


def merge_all(stats) -> np.ndarray:
    """Pooled statistics of several stretches (no cap: used to build training histories)."""
    out = empty()
    for s in stats:
        out = merge(out, s, cap=np.inf)
    return out


def valid(stats) -> bool:
    """A stored vector is usable: the right size, finite, variances and counts >= 0."""
    try:
        s = np.asarray(stats, np.float64)
    except (TypeError, ValueError):
        return False
    return (s.shape == (STATS_SIZE,) and bool(np.all(np.isfinite(s)))
            and all(bool(np.all(s[var] >= 0)) and s[count] >= 0 for _, var, count in _GROUPS))
