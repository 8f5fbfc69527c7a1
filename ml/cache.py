"""Frame features (log-mel, log F0, periodicity) of every corpus clip, computed once and cached in ml/.cache.

Each clip is cached in VERSIONS: the original, and augmented copies made on the
waveform (a random speed factor, then a random lossy codec round trip, see
ml/codec.py).  Features come from the model's own ``features.Frontend`` layer, so
training sees what serving computes.  Built in parallel processes with a progress
bar; a finished cache is reused as long as the front end, the clip list and the
augmentation recipe are unchanged.

    python -m ml.cache [--data PATH] [--jobs 2]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ml import data, params

ML_DIR = Path(__file__).resolve().parent
CACHE = ML_DIR / ".cache"
VERSIONS = ("orig", "aug1", "aug2")
SPEEDS = (0.9, 1.0, 1.1)
RECIPE = "speed(0.9,1.0,1.1)+codec(opus,mp3,aac)/v1"

_layer_fn = None


def _logmel(w: np.ndarray) -> np.ndarray:
    global _layer_fn
    if _layer_fn is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        try:    # one thread per cache-building process; ml.train's Opus scoring keeps its own
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        from ml.features import Frontend
        layer = Frontend()
        _layer_fn = tf.function(lambda x: layer(x),
                                input_signature=[tf.TensorSpec([1, None], tf.float32)])
    if len(w) < params.WINDOW_SAMPLES:          # pad at the end, as serving does
        w = np.pad(w, (0, params.WINDOW_SAMPLES - len(w)))
    return _layer_fn(w[None]).numpy()[0].astype(np.float16)


def augmented(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import resample_poly

    from ml import codec
    s = SPEEDS[rng.integers(len(SPEEDS))]
    if s != 1.0:        # speed s: resample by 1/s, played back at 16 kHz (tempo and pitch)
        w = resample_poly(w, 10, int(round(10 * s))).astype(np.float32)
    return codec.random_round_trip(w, rng)[0]


def _features(job) -> list[np.ndarray]:
    """All versions of one clip (run in a worker process)."""
    i, path, corpus, speaker = job
    clip = data.Clip(Path(path), corpus, speaker, 0, "")
    w = data.load_waveform(clip)
    rng = np.random.default_rng([params.SEED, i])
    return [_logmel(w)] + [_logmel(augmented(w, rng)) for _ in VERSIONS[1:]]


def cache_key(clips) -> str:
    h = hashlib.sha1()
    for k in ("SAMPLE_RATE", "STFT_WINDOW_SAMPLES", "STFT_HOP_SAMPLES", "FFT_LENGTH",
              "MEL_BANDS", "MEL_MIN_HZ", "MEL_MAX_HZ", "LOG_OFFSET", "WINDOW_SAMPLES",
              "PITCH_MIN_HZ", "PITCH_MAX_HZ", "PITCH_LAGS", "FRAME_FEATURES"):
        h.update(f"{k}={getattr(params, k)};".encode())
    h.update(f"{VERSIONS}{RECIPE}".encode())
    h.update("|".join(f"{c.corpus}/{c.path.name}" for c in clips).encode())
    return h.hexdigest()[:12]


def load(clips, jobs: int = 2, progress: bool = True) -> dict[str, list[np.ndarray]]:
    """{version: [frame features (T, FRAME_FEATURES) float16 per clip]}, built if not cached."""
    CACHE.mkdir(exist_ok=True)
    f = CACHE / f"frames_{cache_key(clips)}.npz"
    if not f.exists():
        _build(clips, f, jobs, progress)
    z = np.load(f)
    out = {}
    for v in VERSIONS:
        flat, off = z[f"x_{v}"], z[f"o_{v}"]
        out[v] = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    return out


def _build(clips, path: Path, jobs: int, progress: bool):
    import multiprocessing as mp

    from tqdm import tqdm
    work = [(i, str(c.path), c.corpus, c.speaker) for i, c in enumerate(clips)]
    feats = {v: [None] * len(clips) for v in VERSIONS}
    with mp.get_context("spawn").Pool(jobs) as pool:
        it = pool.imap(_features, work, chunksize=16)
        for i, versions in enumerate(tqdm(it, total=len(work), desc="feature cache",
                                          file=sys.stderr, mininterval=5, disable=not progress)):
            for v, x in zip(VERSIONS, versions):
                feats[v][i] = x
    arrays = {}
    for v in VERSIONS:
        arrays[f"x_{v}"] = np.concatenate(feats[v])
        arrays[f"o_{v}"] = np.cumsum([0] + [len(a) for a in feats[v]])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.rename(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    clips = data.load_corpora(a.data)
    feats = load(clips, jobs=a.jobs)
    print(f"{len(clips)} clips, {sum(len(x) for x in feats['orig'])} frames per version, "
          f"cache {cache_key(clips)}")


if __name__ == "__main__":
    main()
