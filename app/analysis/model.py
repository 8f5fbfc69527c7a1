"""The emotion model of a worker process (loaded once, kept for every job), and the identity of
the shipped model that readings and /api/system/stats name. Only workers load the model; the
web process reads its identity only."""
import functools
import hashlib
import struct

import numpy as np

from ml import params
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


# A window hands its frames on to the window of its stream that starts this much later.
CARRY_HOP_S = params.FRAME_CHUNK * params.STFT_HOP_SAMPLES / params.SAMPLE_RATE
_CARRY_HEAD = struct.Struct("<qd")  # the index and start (s) of the window that handed the frames on
_CARRY_BYTES = _CARRY_HEAD.size + (params.FRAMES_PER_WINDOW - params.FRAME_CHUNK) * params.FRAME_FEATURES * 4


class Carry:
    """The frames that the latest window of each stream hands on to the stream's next window
    (EmotionRecognizer.predict_batch's `carried`: the two seconds they share), so that a window
    a second after the one before costs the front end one second of audio, not three. A window
    takes them only from the window just before it in its stream (the index before its own,
    starting CARRY_HOP_S earlier): any other gap (a window dropped, a stream resumed, a silent
    window, which hands nothing on) costs one window's whole front end, never a wrong frame.
    ``stored``: {stream: bytes or None} as `encoded` kept them (in Redis, between batches)."""

    def __init__(self, stored=None):
        entries = ((stream, self._decode(value)) for stream, value in (stored or {}).items() if value)
        self._entries = {stream: entry for stream, entry in entries if entry is not None}
        self.changed = set()

    def take(self, stream, index, start_s):
        entry = self._entries.get(stream)
        if entry is None or entry[0] != index - 1 or abs(entry[1] + CARRY_HOP_S - start_s) > 1e-6:
            return None
        return entry[2]

    def hand_on(self, stream, index, start_s, frames):
        if frames is not None:
            self._entries[stream] = (index, start_s, frames)
            self.changed.add(stream)

    def encoded(self, stream) -> bytes:
        index, start_s, frames = self._entries[stream]
        return _CARRY_HEAD.pack(index, start_s) + np.ascontiguousarray(frames, "<f4").tobytes()

    @staticmethod
    def _decode(value):
        """(index, start_s, frames), or None for a value of another size (written by another
        model's front end)."""
        if len(value) != _CARRY_BYTES:
            return None
        index, start_s = _CARRY_HEAD.unpack_from(value)
        frames = np.frombuffer(value, "<f4", offset=_CARRY_HEAD.size).reshape(-1, params.FRAME_FEATURES)
        return index, start_s, frames


def predict_adapted(windows, speakers, voices, streams=None, carry=None):
    """Readings of 16 kHz windows of several speakers, each window scored with its speaker's
    history as it was just before it: windows of one speaker count in the order given, and a
    window never sees its own statistics or a later window's. The k-th windows of every speaker
    go in the k-th model call, then their non-silent windows' statistics join their speakers'
    histories (Voice.add). voices: {speaker: app.auth.voice.Voice}; a speaker whose history is
    None (adaptation off) is scored cold and left unchanged.

    streams and carry, for windows cut from streams or recordings: each window's (stream, index,
    start_s) and the Carry of their streams, which each window takes frames from and hands its
    own on to."""
    ranks = {}
    rank_of = []
    for speaker in speakers:
        rank_of.append(ranks.get(speaker, 0))
        ranks[speaker] = rank_of[-1] + 1
    readings = [None] * len(windows)
    for rank in range(max(ranks.values(), default=0)):
        indices = [i for i, r in enumerate(rank_of) if r == rank]
        batch, histories = [windows[i] for i in indices], [voices[speakers[i]].history for i in indices]
        if carry is None:
            predicted, added = recognizer().predict_batch(batch, histories, with_stats=True)
        else:
            predicted, added, onward = recognizer().predict_batch(
                batch, histories, carried=[carry.take(*streams[i]) for i in indices])
            for i, frames in zip(indices, onward):
                carry.hand_on(*streams[i], frames)
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
