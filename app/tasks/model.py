"""The emotion model of this worker process: loaded once, kept for every job."""
import numpy as np

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
