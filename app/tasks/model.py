"""The emotion model of this worker process: loaded once, kept for every job."""
_recognizer = None


def recognizer():
    global _recognizer
    if _recognizer is None:
        from ml.inference import EmotionRecognizer  # only workers ever load the model

        _recognizer = EmotionRecognizer.load()
    return _recognizer
