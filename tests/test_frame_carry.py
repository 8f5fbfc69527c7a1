"""Frames that a streamed window hands on to its stream's next window (app.analysis.model.Carry):
the rule that decides whether a window may take them, and a stream drained by a real worker
(real Redis, the MongoDB-wire server, the real recognizer) reading as if every window were alone."""
import json
import time

import numpy as np
import pytest

from audio import SAMPLE_RATE
from ml import adapt, params

from audio_fixtures import speech_like
from helpers import run_worker

SHARED = params.FRAMES_PER_WINDOW - params.FRAME_CHUNK


def test_a_window_takes_only_what_the_window_just_before_it_handed_on():
    from app.analysis.model import Carry

    frames = np.arange(SHARED * params.FRAME_FEATURES, dtype=np.float32).reshape(SHARED, -1)
    carry = Carry()
    carry.hand_on("s", 4, 2.0, frames)
    assert carry.changed == {"s"}
    kept = Carry({"s": carry.encoded("s"), "other": None})
    np.testing.assert_array_equal(kept.take("s", 5, 3.0), frames)
    assert kept.take("s", 6, 4.0) is None      # a window between them went missing
    assert kept.take("s", 5, 2.5) is None      # not a hop later (a resumed stream numbers on)
    assert kept.take("other", 5, 3.0) is None
    assert Carry({"s": carry.encoded("s")[:-4]}).take("s", 5, 3.0) is None  # not the frames of this model
    assert kept.changed == set()
    kept.hand_on("s", 5, 3.0, None)            # a silent window hands nothing on
    assert kept.changed == set() and kept.take("s", 5, 3.0) is not None


def test_a_streams_windows_read_the_same_with_the_frames_handed_on(app, monkeypatch):
    """After its first, each window of the stream computes one second of frames, also in a batch
    after the one that handed them on (through Redis), and reads as if alone."""
    from app.analysis.model import predict_adapted, recognizer
    from app.auth.voice import Voice
    from app.live import ready
    from app.models import EmotionReading, EmotionSession, User

    speech = speech_like(7.0, SAMPLE_RATE)[0]
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2")
    windows = [pcm[s:s + params.WINDOW_SAMPLES] for s in range(0, len(pcm) - params.WINDOW_SAMPLES + 1, SAMPLE_RATE)]
    computed = []
    with app.app_context():
        rec = recognizer()
        frames = rec.frames
        monkeypatch.setattr(rec, "frames", lambda x, n: computed.append(n) or frames(x, n))
        redis = app.extensions["redis"]
        owner = User(email="carry@example.com", password_hash="x", display_name="c").save()
        session = EmotionSession(owner=owner).save()
        sid, uid = str(session.id), str(owner.id)
        for index, samples in enumerate(windows):
            descriptor = json.dumps({"session_id": sid, "user_id": uid, "index": index, "start_s": float(index),
                                     "end_s": index + 3.0, "received_at": time.time()})
            _, _, claimed = ready.add_pending(redis, sid, uid, index, 10, samples.tobytes(), descriptor)
            if claimed:
                ready.enqueue_drain(redis)
            if index % 2:  # two batches at least: frames go through Redis between them
                run_worker(app)
        run_worker(app)
        assert computed == [params.FRAMES_PER_WINDOW] + [params.FRAME_CHUNK] * (len(windows) - 1)
        stored = sorted(EmotionReading.objects(session=session), key=lambda r: r.window_start)
        assert len(stored) == len(windows)
        alone = predict_adapted([w.astype(np.float32) / 32768 for w in windows], [uid] * len(windows),
                                {uid: Voice(adapt.empty(), None)})
        for reading, expected in zip(stored, alone):
            assert reading.probabilities == pytest.approx(expected["probabilities"], abs=1e-6)
        handed = redis.get(ready.frames_key(sid))
        assert handed is not None and 0 < redis.ttl(ready.frames_key(sid)) <= ready.FRAMES_TTL_S
