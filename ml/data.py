"""RAVDESS metadata parsing and speaker-independent (actor-grouped) splits.

No TensorFlow import here (the baseline runs in a TensorFlow-free process).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml import params

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = (REPO_ROOT / ".." / "shared" / "data" / "ravdess").resolve()
NUM_FOLDS = 6
TRAIN_ACTORS = tuple(range(1, 21))   # the shipped model sees only these
TEST_ACTORS = tuple(range(21, 25))   # held out: ml.evaluate --split test
# validation for the shipped model, from within the training actors (1 male, 1 female)
VALIDATION_ACTORS = (19, 20)


@dataclass(frozen=True)
class Clip:
    path: Path       # absolute path of the FLAC file
    actor: int       # 1..24
    label: int       # index into params.CLASSES
    gender: str
    intensity: str
    statement: str

    @property
    def emotion(self) -> str:
        return params.CLASSES[self.label]


def data_dir(path: str | os.PathLike | None = None) -> Path:
    return Path(path).resolve() if path else DEFAULT_DATA


def corpus_available(path: str | os.PathLike | None = None) -> bool:
    return (data_dir(path) / "metadata.csv").is_file()


def load_metadata(path: str | os.PathLike | None = None) -> list[Clip]:
    """Read metadata.csv; clips sorted by path (a deterministic order)."""
    root = data_dir(path)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(
            f"RAVDESS metadata not found at {meta}; pass --data PATH "
            "(the folder holding metadata.csv and audio/)")
    clips = []
    with open(meta, newline="") as fh:
        for row in csv.DictReader(fh):
            emotion = row["emotion"].strip().lower()
            if emotion not in params.CLASSES:
                raise ValueError(f"unknown emotion {emotion!r} in {meta}")
            clips.append(Clip(
                path=root / row["path"],
                actor=int(row["speaker"].rsplit("_", 1)[1]),
                label=params.CLASSES.index(emotion),
                gender=row["gender"],
                intensity=row["intensity"],
                statement=row["statement"],
            ))
    clips.sort(key=lambda c: str(c.path))
    return clips


def fold_test_actors(k: int) -> tuple[int, ...]:
    """Fold k (0..5) tests actors 4k+1..4k+4 (two male, two female)."""
    if not 0 <= k < NUM_FOLDS:
        raise ValueError(f"fold must be in 0..{NUM_FOLDS - 1}")
    return tuple(range(4 * k + 1, 4 * k + 5))


def fold_validation_actors(k: int) -> tuple[int, ...]:
    """Validation actors inside fold k's training actors: the last male/female pair
    of the next fold's block (never a test actor of fold k)."""
    nxt = fold_test_actors((k + 1) % NUM_FOLDS)
    return nxt[2], nxt[3]


def split_indices(clips: list[Clip], actors) -> np.ndarray:
    actors = set(actors)
    return np.array([i for i, c in enumerate(clips) if c.actor in actors], dtype=np.int64)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG file: float32 samples (n,) or (n, ch), and its rate."""
    import soundfile as sf
    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    return x, int(sr)


def load_waveforms(clips: list[Clip]) -> list[np.ndarray]:
    out = []
    for c in clips:
        x, sr = read_audio(c.path)
        if sr != params.SAMPLE_RATE:
            raise ValueError(f"{c.path}: expected {params.SAMPLE_RATE} Hz, got {sr}")
        if x.ndim == 2:
            x = x.mean(axis=1)
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    return out
