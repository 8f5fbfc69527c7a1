"""The corpora: metadata, speakers, class masks and speaker-independent splits.

Every corpus folder under the data root (default ``../shared/data``) holds a
``metadata.csv`` with the same columns (``path, speaker, gender, emotion, ...``) and its
audio.  Audio is read where it lies; nothing is copied into this repository.

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
DEFAULT_ROOT = (REPO_ROOT / ".." / "shared" / "data").resolve()
CORPORA = ("ravdess", "nemo", "ased")
NUM_FOLDS = 6
TRAIN_ACTORS = tuple(range(1, 21))   # RAVDESS actors the shipped model sees
TEST_ACTORS = tuple(range(21, 25))   # held out: ml.evaluate --split test


@dataclass(frozen=True)
class Clip:
    path: Path       # absolute path of the audio file
    corpus: str      # one of CORPORA
    speaker: str     # e.g. "ravdess_07", "nemo_EB0"
    label: int       # index into params.CLASSES
    gender: str

    @property
    def emotion(self) -> str:
        return params.CLASSES[self.label]

    @property
    def actor(self) -> int:
        """RAVDESS actor number (1..24); other corpora have none."""
        if self.corpus != "ravdess":
            raise AttributeError(f"{self.speaker} is not a RAVDESS actor")
        return int(self.speaker.rsplit("_", 1)[1])


def add_data_argument(parser):
    """Every ml command's --data option."""
    parser.add_argument("--data", default=None,
                        help="folder holding ravdess/, nemo/ and ased/ (default ../shared/data)")


def data_root(path: str | os.PathLike | None = None) -> Path:
    return Path(path).resolve() if path else DEFAULT_ROOT


def corpus_available(root: str | os.PathLike | None = None, corpus: str = "ravdess") -> bool:
    return (data_root(root) / corpus / "metadata.csv").is_file()


def load_metadata(root: str | os.PathLike | None = None, corpus: str = "ravdess") -> list[Clip]:
    """One corpus's clips, sorted by path (a deterministic order)."""
    folder = data_root(root) / corpus
    meta = folder / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(
            f"{corpus} metadata not found at {meta}; pass --data PATH "
            "(the folder holding ravdess/, nemo/ and ased/)")
    clips = []
    with open(meta, newline="") as fh:
        for row in csv.DictReader(fh):
            emotion = row["emotion"].strip().lower()
            if emotion not in params.CLASSES:
                raise ValueError(f"unknown emotion {emotion!r} in {meta}")
            clips.append(Clip(path=folder / row["path"], corpus=corpus,
                              speaker=row["speaker"].strip(),
                              label=params.CLASSES.index(emotion), gender=row["gender"]))
    clips.sort(key=lambda c: str(c.path))
    return clips


def load_corpora(root: str | os.PathLike | None = None, corpora=CORPORA) -> list[Clip]:
    """The clips of several corpora, corpus by corpus in the order given."""
    return [c for name in corpora for c in load_metadata(root, name)]


def class_mask(clips, corpus: str) -> np.ndarray:
    """(NUM_CLASSES,) float32: 1 for the classes that corpus has, 0 for the others."""
    mask = np.zeros(params.NUM_CLASSES, np.float32)
    mask[sorted({c.label for c in clips if c.corpus == corpus})] = 1.0
    return mask


def fold_test_actors(k: int) -> tuple[int, ...]:
    """RAVDESS CV fold k (0..5) tests actors 4k+1..4k+4 (two male, two female)."""
    if not 0 <= k < NUM_FOLDS:
        raise ValueError(f"fold must be in 0..{NUM_FOLDS - 1}")
    return tuple(range(4 * k + 1, 4 * k + 5))


def ravdess_speakers(actors) -> set[str]:
    return {f"ravdess_{a:02d}" for a in actors}


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a corpus file (FLAC, Ogg Opus): float32 samples (n,) or (n, ch), and its rate. Files
    from users go through audio/decode.py, as uploads do (ml.predict)."""
    import soundfile as sf
    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    return x, int(sr)


def load_waveform(clip: Clip) -> np.ndarray:
    x, sr = read_audio(clip.path)
    if sr != params.SAMPLE_RATE:
        raise ValueError(f"{clip.path}: expected {params.SAMPLE_RATE} Hz, got {sr}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    return np.ascontiguousarray(x, dtype=np.float32)
