"""The pending-window state the web process and the workers share, on the real Redis."""
import uuid

import pytest
import redis as redis_lib

from app import streams


@pytest.fixture
def redis(redis_url):
    return redis_lib.Redis.from_url(redis_url)


@pytest.fixture
def session_id():
    return uuid.uuid4().hex


def test_a_pending_window_keeps_its_audio_until_done(redis, session_id):
    assert streams.add_pending(redis, session_id, 0, 3, b"\x01\x00" * 4) == []
    assert streams.pending_audio(redis, [(session_id, 0)]) == [b"\x01\x00" * 4]
    pipe = redis.pipeline()
    streams.done(pipe, session_id, 0)
    pipe.execute()
    assert streams.pending_audio(redis, [(session_id, 0)]) == [None]
    assert not redis.exists(streams.audio_key(session_id, 0))


def test_backpressure_drops_the_oldest_windows_and_their_audio(redis, session_id):
    dropped = []
    for index in range(5):
        dropped += streams.add_pending(redis, session_id, index, 3, bytes([index]) * 2)
    assert dropped == [0, 1]
    assert streams.pending_audio(redis, [(session_id, i) for i in range(5)]) == [None, None, b"\x02\x02", b"\x03\x03", b"\x04\x04"]
    assert not redis.exists(streams.audio_key(session_id, 0), streams.audio_key(session_id, 1))
    assert redis.ttl(streams.audio_key(session_id, 4)) > 0  # nothing outlives an abandoned stream


def test_windows_of_several_sessions_in_one_batch(redis, session_id):
    other = uuid.uuid4().hex
    streams.add_pending(redis, session_id, 7, 10, b"a")
    streams.add_pending(redis, other, 7, 10, b"b")
    assert streams.pending_audio(redis, [(other, 7), (session_id, 7), (session_id, 8)]) == [b"b", b"a", None]
