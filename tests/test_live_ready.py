"""The pending-window state the web process and the workers share, on the real Redis."""
import json
import threading
import time
import uuid

import numpy as np
import pytest
import redis as redis_lib

from app.live import ready as ready_list

from helpers import run_worker


@pytest.fixture
def redis(redis_url):
    return redis_lib.Redis.from_url(redis_url)


@pytest.fixture
def session_id():
    return uuid.uuid4().hex


@pytest.fixture
def ready(redis):
    """An empty ready list, nothing taken and no drain job marked queued; what a test leaves
    is cleared too."""
    def clear():
        redis.delete(ready_list.READY_KEY, ready_list.DRAIN_QUEUED_KEY, ready_list.WAITING_KEY,
                     *redis.keys(ready_list.taken_key("*")))
    clear()
    yield
    clear()


def add(redis, session_id, index, max_pending, pcm):
    return ready_list.add_pending(redis, session_id, index, max_pending, pcm, f"{session_id}:{index}".encode())


def test_a_pending_window_keeps_its_audio_until_done(redis, session_id, ready):
    assert add(redis, session_id, 0, 3, b"\x01\x00" * 4) == ([], True)
    assert ready_list.pending_audio(redis, [(session_id, 0)]) == [b"\x01\x00" * 4]
    pipe = redis.pipeline()
    ready_list.done(pipe, session_id, 0)
    pipe.execute()
    assert ready_list.pending_audio(redis, [(session_id, 0)]) == [None]
    assert not redis.exists(ready_list.audio_key(session_id, 0))


def test_backpressure_drops_the_oldest_windows_and_their_audio(redis, session_id, ready):
    dropped = []
    for index in range(5):
        dropped += add(redis, session_id, index, 3, bytes([index]) * 2)[0]
    assert dropped == [0, 1]
    assert (ready_list.pending_audio(redis, [(session_id, i) for i in range(5)])
            == [None, None, b"\x02\x02", b"\x03\x03", b"\x04\x04"])
    assert not redis.exists(ready_list.audio_key(session_id, 0), ready_list.audio_key(session_id, 1))
    assert redis.ttl(ready_list.audio_key(session_id, 4)) > 0  # nothing outlives an abandoned stream


def test_windows_of_several_sessions_in_one_batch(redis, session_id, ready):
    other = uuid.uuid4().hex
    add(redis, session_id, 7, 10, b"a")
    add(redis, other, 7, 10, b"b")
    assert ready_list.pending_audio(redis, [(other, 7), (session_id, 7), (session_id, 8)]) == [b"b", b"a", None]


def test_one_drain_job_is_asked_for_until_one_starts(redis, session_id, ready):
    assert [add(redis, session_id, i, 10, b"x")[1] for i in range(3)] == [True, False, False]
    assert not ready_list.claim_drain(redis)
    ready_list.drain_started(redis)
    assert add(redis, session_id, 3, 10, b"x")[1] is True  # for another worker
    # A lost enqueue stalls nothing for long.
    assert 0 < redis.ttl(ready_list.DRAIN_QUEUED_KEY) <= ready_list.DRAIN_QUEUED_TTL_S


def test_no_drain_job_is_asked_for_while_one_waits_on_the_ready_list(redis, session_id, ready):
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] + 5})
    assert add(redis, session_id, 0, 10, b"x")[1] is False
    assert not redis.exists(ready_list.DRAIN_QUEUED_KEY)
    # a worker that died while waiting no longer counts once its wait must have ended
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] - 1})
    assert add(redis, session_id, 1, 10, b"x")[1] is True
    assert redis.zcard(ready_list.WAITING_KEY) == 0


def test_a_waiting_drain_job_takes_a_window_the_moment_it_is_added(redis, session_id, ready):
    claims = []
    adder = threading.Timer(0.2, lambda: claims.append(add(redis, session_id, 0, 10, b"x")[1]))
    adder.start()
    started = time.monotonic()
    assert ready_list.wait_for_window(redis, "job-a", 1.0) == [f"{session_id}:0".encode()]
    assert 0.15 < time.monotonic() - started < 0.9
    adder.join()
    assert claims == [False]  # the waiting job was counted: no other job was asked for
    assert redis.zcard(ready_list.WAITING_KEY) == 0
    # held for job-a like take_windows' windows: a retry of job-a gets it back
    assert redis.ttl(ready_list.taken_key("job-a")) > 0
    assert ready_list.take_windows(redis, "job-a", 5) == [f"{session_id}:0".encode()]
    # nothing comes: the job stops waiting (and counting as waiting) after its timeout
    assert ready_list.wait_for_window(redis, "job-b", 0.1) == []
    assert redis.zcard(ready_list.WAITING_KEY) == 0
    assert add(redis, session_id, 1, 10, b"x")[1] is True


def test_the_ready_list_stays_bounded_while_no_worker_runs(redis, session_id, ready, monkeypatch):
    monkeypatch.setattr(ready_list, "READY_MAX", 3)
    for index in range(5):
        add(redis, session_id, index, 10, b"x")
    assert ready_list.ready_count(redis) == 3
    assert ready_list.take_windows(redis, "job-a", 10) == [f"{session_id}:{i}".encode() for i in (2, 3, 4)]


def test_drain_jobs_take_windows_in_order_and_a_retry_gets_back_what_it_took(redis, session_id, ready):
    for index in range(5):
        add(redis, session_id, index, 10, b"x")
    assert ready_list.take_windows(redis, "job-a", 2) == [f"{session_id}:0".encode(), f"{session_id}:1".encode()]
    assert ready_list.take_windows(redis, "job-b", 2) == [f"{session_id}:2".encode(), f"{session_id}:3".encode()]
    # job-a failed or its worker died before storing: its retry is given the same windows again
    assert ready_list.take_windows(redis, "job-a", 2) == [f"{session_id}:0".encode(), f"{session_id}:1".encode()]
    assert redis.ttl(ready_list.taken_key("job-a")) > 0
    pipe = redis.pipeline()
    ready_list.taken_done(pipe, "job-a")
    pipe.execute()
    assert ready_list.ready_count(redis) == 1
    assert ready_list.take_windows(redis, "job-a", 2) == [f"{session_id}:4".encode()]
    assert ready_list.take_windows(redis, "job-c", 2) == []


def test_a_worker_drains_every_window_once_across_jobs(app, monkeypatch):
    """The whole worker side on real Redis and the MongoDB-wire server: windows put on the
    ready list are each stored once, in order, by drain jobs that hand over to a new job when
    their budget is spent (here after every batch of two)."""
    from app.live import drain
    from app.models import EmotionReading, EmotionSession, User

    enqueue_drain = ready_list.enqueue_drain
    monkeypatch.setattr(drain, "DRAIN_BUDGET_S", 0.0)
    monkeypatch.setitem(app.config, "STREAM_BATCH_MAX", 2)
    t = np.arange(48000) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * 32767).astype("<i2").tobytes()
    with app.app_context():
        redis = app.extensions["redis"]
        owner = User(email="drain@example.com", password_hash="x", display_name="d").save()
        session = EmotionSession(owner=owner).save()
        sid = str(session.id)
        for index in range(5):
            descriptor = json.dumps({"session_id": sid, "user_id": str(owner.id), "index": index,
                                     "start_s": float(index), "end_s": index + 3.0, "received_at": time.time()})
            _, claimed = ready_list.add_pending(redis, sid, index, 10, pcm, descriptor)
            if claimed:
                ready_list.enqueue_drain(redis)
        handed_over = []
        monkeypatch.setattr(ready_list, "enqueue_drain", lambda r: handed_over.append(1) or enqueue_drain(r))
        run_worker(app)
        keys = [r.window_key for r in EmotionReading.objects(session=session).order_by("window_start")]
        assert keys == [f"{sid}:{i}" for i in range(5)]
        assert len(handed_over) == 2  # jobs of 2, 2 and 1 windows
        assert ready_list.ready_count(redis) == 0
        assert not redis.keys("stream:taken:*") and not redis.keys(f"stream:audio:{sid}:*")
        assert not redis.exists(ready_list.pending_key(sid))
