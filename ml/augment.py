"""Training-time augmentation on cached log-mel features (numpy, cheap on CPU).

Waveform-level speed perturbation (x0.9 / x1.1, i.e. tempo and pitch together) is
applied once when the feature cache is built (ml.train.build_cache); everything
here works on log-mel frames: random 3 s crop (time shift), additive noise mixed
in the power domain at a random SNR and spectral tilt, SpecAugment time and
frequency masks, and mixup.
"""
from __future__ import annotations

import numpy as np

from ml import params

_PAD_VALUE = float(np.log(params.LOG_OFFSET))   # log-mel of digital silence


def crop(feat: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """A window of n frames: random position if rng is given, else centred."""
    t = feat.shape[0]
    if t <= n:
        out = np.full((n, feat.shape[1]), _PAD_VALUE, dtype=np.float32)
        out[:t] = feat
        return out
    start = rng.integers(0, t - n + 1) if rng is not None else (t - n) // 2
    return feat[start:start + n].astype(np.float32)


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


def mixup(x: np.ndarray, y: np.ndarray, rng, alpha=0.3, prob=0.5):
    """Mix a random half of the batch with a shuffled copy (labels mixed likewise)."""
    n = len(x)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)                       # the original stays dominant
    lam[rng.random(n) >= prob] = 1.0
    perm = rng.permutation(n)
    xm = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
    ym = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    return xm.astype(np.float32), ym.astype(np.float32)
