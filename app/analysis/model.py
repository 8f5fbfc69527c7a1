"""The emotion model of a worker process (loaded once, kept for every job), and the identity of
the shipped model that readings and /api/system/stats name. Only workers load the model; the
web process reads its identity only."""
import functools
import hashlib

import numpy as np

from ml.inference import DEFAULT_MODEL

_recognizer = None


def recognizer():
    global _recognizer
    if _recognizer is None:
        from ml.inference import EmotionRecognizer  # only workers ever load the model
        from ml.params import WINDOW_SAMPLES

        _recognizer = EmotionRecognizer.load()
        # The first call allocates the interpreter's buffers: pay for it before the first window.
        _recognizer.predict_batch([np.full(WINDOW_SAMPLES, 0.1, np.float32)])
    return _recognizer


@functools.cache
def model_version():
    """The shipped model's identity: file name and the start of its SHA-256 (None if absent)."""
    if not DEFAULT_MODEL.exists():
        return None
    return f"{DEFAULT_MODEL.stem}-{hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()[:12]}"
