"""Training-time augmentation on cached frame features (numpy, cheap on CPU).

Waveform-level speed perturbation and lossy codec round trips are applied once when
the feature cache is built (ml/cache.py); random crop (time shift) works on whole
frames, everything else on the log-mel part of a frame: a room's late reverberation, additive
noise mixed in the power domain at a random SNR and spectral tilt, a random smooth equaliser,
a mel-axis warp (vocal-tract length), SpecAugment time and frequency masks, and mixup
(ml.train mixes within a corpus).
"""
from __future__ import annotations

import numpy as np

from ml import params

# a frame of digital silence: log-mel at the floor, log F0 and periodicity 0
_PAD_FRAME = np.zeros(params.FRAME_FEATURES, np.float32)
_PAD_FRAME[:params.MEL_BANDS] = np.log(params.LOG_OFFSET)


def crop(feat: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """A window of n frames: random position if rng is given, else centred."""
    t = feat.shape[0]
    if t <= n:
        out = np.tile(_PAD_FRAME[:feat.shape[1]], (n, 1))
        out[:t] = feat
        return out
    start = rng.integers(0, t - n + 1) if rng is not None else (t - n) // 2
    return feat[start:start + n].astype(np.float32)


def reverb(x: np.ndarray, rng, rt60_s=(0.2, 0.8), drr_db=(0.0, 12.0)) -> np.ndarray:
    """A room's late reverberation in the mel power domain: each band's power carried forward
    by an exponential decay (60 dB over the band's RT60, shorter at high frequencies, which
    walls and air absorb more), at a random direct-to-reverberant ratio, as a laptop or
    phone microphone an arm's length away hears a voice in an ordinary room."""
    power = np.exp(x.astype(np.float64)) - params.LOG_OFFSET
    rt60 = rng.uniform(*rt60_s) * np.linspace(1.0, 0.5, x.shape[1])
    decay = np.exp(-np.log(1e6) * params.STFT_HOP_SECONDS / rt60)
    level = 10 ** (-rng.uniform(*drr_db) / 10)
    tail = np.zeros(x.shape[1])
    out = np.empty_like(power)
    for t, frame in enumerate(power):     # the tail holds the decayed power of earlier frames
        out[t] = frame + level * tail
        tail = decay * tail + (1 - decay) * frame
    return np.log(np.maximum(out, 0.0) + params.LOG_OFFSET).astype(np.float32)


def add_noise(x: np.ndarray, rng, mel_gain: np.ndarray, snr_db=(3.0, 35.0)) -> np.ndarray:
    """Mix noise in the mel power domain: coloured (random tilt), fluctuating per frame."""
    power = np.exp(x) - params.LOG_OFFSET
    frame_power = power.sum(axis=1)
    speech = np.percentile(frame_power, 90)           # level of the loud (speech) frames
    snr = rng.uniform(*snr_db)
    tilt = rng.uniform(-1.0, 0.5)                       # dB/octave-ish slope in the mel index
    shape = mel_gain * np.exp(tilt * np.linspace(0, 3, x.shape[1]))
    shape = shape / shape.sum()
    level = speech * 10 ** (-snr / 10)
    fluct = rng.gamma(4.0, 0.25, size=(x.shape[0], x.shape[1]))  # mean 1
    noise = level * shape[None, :] * fluct
    return np.log(power + noise + params.LOG_OFFSET).astype(np.float32)


def eq_curve(rng, max_db: float, bands: int = params.MEL_BANDS) -> np.ndarray:
    """A random smooth equaliser, to add to log-mel frames: a gain curve over the mel
    bands through 4 random points of up to +-max_db, as microphones, rooms and codecs
    colour a voice."""
    ctrl = rng.uniform(-max_db, max_db, size=4) * np.log(10) / 10     # dB -> ln power
    return np.interp(np.linspace(0, 3, bands), np.arange(4), ctrl).astype(np.float32)


def freq_warp(x: np.ndarray, a: float) -> np.ndarray:
    """(T, bands) with the mel axis stretched by a (a longer or shorter vocal tract:
    another speaker's formants, same prosody)."""
    n = x.shape[1]
    src = np.clip(np.arange(n) / a, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = (src - lo)[None, :]
    return ((1 - frac) * x[:, lo] + frac * x[:, hi]).astype(np.float32)


def spec_augment(x: np.ndarray, rng, n_freq=2, max_f=10, n_time=2, max_t=40) -> np.ndarray:
    x = x.copy()
    fill = x.mean(axis=0)
    for _ in range(n_freq):
        f = rng.integers(0, max_f + 1)
        f0 = rng.integers(0, x.shape[1] - f + 1)
        x[:, f0:f0 + f] = fill[f0:f0 + f]
    for _ in range(n_time):
        t = rng.integers(0, max_t + 1)
        t0 = rng.integers(0, x.shape[0] - t + 1)
        x[t0:t0 + t] = fill
    return x
