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


def predict_adapted(windows, speakers, voices):
    """Readings of 16 kHz windows of several speakers, each window scored with its speaker's
    history as it was just before it: windows of one speaker count in the order given, and a
    window never sees its own statistics or a later window's. The k-th windows of every speaker
    go in the k-th model call, then their non-silent windows' statistics join their speakers'
    histories (Voice.add). voices: {speaker: app.auth.voice.Voice}; a speaker whose history is
    None (adaptation off) is scored cold and left unchanged."""
    ranks = {}
    rank_of = []
    for speaker in speakers:
        rank_of.append(ranks.get(speaker, 0))
        ranks[speaker] = rank_of[-1] + 1
    readings = [None] * len(windows)
    for rank in range(max(ranks.values(), default=0)):
        indices = [i for i, r in enumerate(rank_of) if r == rank]
        predicted, added = recognizer().predict_batch(
            [windows[i] for i in indices], [voices[speakers[i]].history for i in indices], with_stats=True)
        for i, reading, stats in zip(indices, predicted, added):
            readings[i] = reading
            if stats is not None and voices[speakers[i]].history is not None:
                voices[speakers[i]].add(stats)
    return readings


@functools.cache
def model_version():
    """The shipped model's identity: file name and the start of its SHA-256 (None if absent)."""
    if not DEFAULT_MODEL.exists():
        return None
    return f"{DEFAULT_MODEL.stem}-{hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()[:12]}"
