"""The live channel against hostile or careless use (issue 16, items 3 and 4), on the real stack:
web (eventlet) and worker processes as the Procfile starts them, Redis, the MongoDB-wire server.

A stream outlives neither its token nor its account; one user cannot hold more than their share
of connections, streams and new sessions."""
import time
from datetime import UTC, datetime

import numpy as np
import pymongo
import pytest
import redis as redis_lib
from bson import ObjectId

from devtools.stack import Stack
from mood_mirror.client import ApiClientError, MoodMirrorClient

FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}
PASSWORD = "correct horse battery"
ACCESS_SECONDS = 20
LIMITS = {"STREAM_MAX_CONNECTIONS_PER_USER": "3", "STREAM_MAX_STREAMS_PER_USER": "2",
          "STREAM_SESSIONS_PER_MINUTE": "4"}


def voiced(seconds):
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    # Its own MongoDB database; the test Redis database, which no test here empties meanwhile.
    redis_lib.Redis.from_url(redis_url).flushdb()
    running = Stack(mongo_uri.replace("/moodmirror_test", "/moodmirror_live_security"), redis_url,
                    tmp_path_factory.mktemp("stack"),
                    extra_env={"JWT_ACCESS_SECONDS": str(ACCESS_SECONDS), **LIMITS}).start()
    yield running
    running.stop()


@pytest.fixture
def db(stack):
    client = pymongo.MongoClient(stack.mongo_uri)
    yield client.get_default_database()
    client.close()


def signed_in(stack, email):
    client = MoodMirrorClient(stack.base_url)
    client.register(email, PASSWORD)
    return client


def stream_until(live, pcm, predicate, chunk_ms=250):
    """Send pcm at real-time pace until predicate() holds; returns the seconds sent."""
    step = 16 * chunk_ms
    for i, first in enumerate(range(0, pcm.size, step)):
        if predicate():
            return i * chunk_ms / 1000
        live.send(pcm[first:first + step].tobytes())
        time.sleep(chunk_ms / 1000)
    return pcm.size / 16000


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_revoked_token_ends_the_stream_and_a_fresh_token_resumes_its_session(stack, db):
    client = signed_in(stack, "revoked@example.com")
    live = client.live_stream(wait_timeout=20).connect()
    session_id = live.start(FORMAT)
    live.stream_samples(voiced(3.0), realtime=True)
    client.logout()  # revokes the access token the stream connected with, and the refresh token
    revoked_at = time.time()
    stream_until(live, voiced(4.0), lambda: not live.sio.connected)
    assert wait_until(lambda: not live.sio.connected, 5), "the server disconnects the stream"
    error = live.errors[-1]
    assert error["code"] == "token_revoked" and error["session_id"] == session_id
    # No window completed after the revocation is analysed (a reading's timestamp is the
    # arrival of the chunk that completed its window).
    time.sleep(2)
    late = {"session": ObjectId(session_id), "timestamp": {"$gt": datetime.fromtimestamp(revoked_at + 0.5, UTC)}}
    assert db.readings.count_documents(late) == 0
    session = db.sessions.find_one({"_id": ObjectId(session_id)})
    assert session["status"] == "active", "the session waits to be resumed"

    client.login("revoked@example.com", PASSWORD)
    before = db.readings.count_documents({"session": ObjectId(session_id)})
    resumed = client.live_stream(wait_timeout=20).connect()
    assert resumed.start(FORMAT, session_id=session_id) == session_id
    resumed.stream_samples(voiced(3.0), realtime=True)
    summary = resumed.stop()
    resumed.wait_for_emotions(summary["windows"], timeout=30)
    resumed.close()
    keys = [r["window_key"] for r in db.readings.find({"session": ObjectId(session_id)})]
    assert len(keys) == len(set(keys)) == before + summary["windows"]
    assert db.sessions.find_one({"_id": ObjectId(session_id)})["status"] == "ended"


def test_signing_out_everywhere_ends_a_running_stream(stack, db):
    """POST /api/auth/logout-all (as a password change) revokes every earlier token, including
    the one a stream connected with: the stream ends within a window, as for one revoked token."""
    client = signed_in(stack, "everywhere@example.com")
    live = client.live_stream(wait_timeout=20).connect()
    session_id = live.start(FORMAT)
    live.stream_samples(voiced(3.0), realtime=True)
    other = MoodMirrorClient(stack.base_url)
    other.login("everywhere@example.com", PASSWORD)
    other.json("POST", "/api/auth/logout-all")
    stream_until(live, voiced(4.0), lambda: not live.sio.connected)
    assert wait_until(lambda: not live.sio.connected, 5), "the server disconnects the stream"
    error = live.errors[-1]
    assert error["code"] == "token_revoked" and error["session_id"] == session_id


def test_an_expired_token_ends_the_stream_and_the_client_resumes_with_a_refreshed_one(stack, db):
    client = signed_in(stack, "expiring@example.com")
    live = client.live_stream(wait_timeout=20).connect()
    session_id = live.start(FORMAT)
    started = time.monotonic()
    stream_until(live, voiced(ACCESS_SECONDS + 8.0), lambda: bool(live.errors))
    assert live.errors[-1]["code"] == "token_expired"
    assert time.monotonic() - started <= ACCESS_SECONDS + 2
    assert wait_until(lambda: not live.sio.connected, 5)
    live.resume()  # the client library: refresh, reconnect, start {session_id}
    assert live.session_id == session_id and live.sio.connected
    live.stream_samples(voiced(2.0), realtime=True)
    summary = live.stop()
    live.close()
    assert summary["session_id"] == session_id


def test_deleting_the_account_ends_its_streams_and_leaves_nothing_behind(stack, db):
    client = signed_in(stack, "leaving@example.com")
    user_id = client.json("GET", "/api/auth/profile")["id"]
    streams = [client.live_stream(wait_timeout=20).connect() for _ in range(2)]
    sessions = [live.start(FORMAT) for live in streams]
    for live in streams:
        live.stream_samples(voiced(2.0), realtime=True)
    assert wait_until(lambda: db.readings.count_documents({"owner": ObjectId(user_id)}) > 0, 10)
    # Windows in flight: a burst well ahead of real time on both streams, then the deletion.
    for live in streams:
        live.stream_samples(voiced(6.0), realtime=False)
    client.json("DELETE", "/api/auth/profile")
    for live in streams:
        stream_until(live, voiced(4.0), lambda live=live: not live.sio.connected)
        assert wait_until(lambda live=live: not live.sio.connected, 5)
        assert live.errors[-1]["code"] == "user_not_found"
    redis = redis_lib.Redis.from_url(stack.redis_url)
    assert wait_until(lambda: not any(redis.keys(f"stream:window:{s}:*") for s in sessions), 20)
    time.sleep(1)
    owner = ObjectId(user_id)
    assert db.readings.count_documents({"owner": owner}) == 0
    assert db.environment_responses.count_documents({"owner": owner}) == 0
    assert db.sessions.count_documents({"owner": owner}) == 0
    assert db.users.count_documents({"_id": owner}) == 0


def test_per_user_limits_on_connections_streams_and_new_sessions(stack):
    client = signed_in(stack, "greedy@example.com")
    other = signed_in(stack, "modest@example.com")
    connections = [client.live_stream(wait_timeout=10).connect() for _ in range(3)]
    with pytest.raises(ApiClientError) as refused:
        client.live_stream(wait_timeout=10).connect()
    assert refused.value.code == "too_many_connections"

    connections[0].start(FORMAT)
    connections[1].start(FORMAT)
    connections[2].sio.emit("start", {"format": FORMAT})
    assert wait_until(lambda: connections[2].errors, 5)
    assert connections[2].errors[-1]["code"] == "too_many_streams"
    # Another user is not held back by this one.
    with other.live_stream(wait_timeout=10) as theirs:
        theirs.start(FORMAT)
        theirs.stop()

    # A stream that stops frees its slot; sessions created by start/stop are counted per minute.
    connections[0].stop()
    connections[2].start(FORMAT)  # the 3rd new session this minute
    connections[2].stop()
    connections[2].start(FORMAT)  # the 4th
    connections[2].stop()
    connections[2].errors.clear()
    connections[2].sio.emit("start", {"format": FORMAT})
    assert wait_until(lambda: connections[2].errors, 5)
    error = connections[2].errors[-1]
    assert error["code"] == "too_many_sessions" and 0 < error["retry_after"] <= 60
    # Closing connections gives their slots back.
    for live in connections:
        live.close()
    assert wait_until(lambda: _connects(client), 5)


def _connects(client):
    try:
        client.live_stream(wait_timeout=10).connect().close()
        return True
    except ApiClientError:
        return False


def test_malformed_socketio_packets_are_counted_not_logged_one_traceback_each():
    import logging
    import sys

    from app.live.handlers import MalformedPackets

    def record(message, error):
        try:
            raise error
        except Exception:
            return logging.LogRecord("engineio.server", logging.ERROR, __file__, 1, message, None, sys.exc_info())

    malformed = MalformedPackets()
    before = MalformedPackets.count
    assert not malformed.filter(record("message handler error", ValueError("Unexpected binary packet")))
    assert MalformedPackets.count == before + 1
    assert malformed.filter(record("message handler error", RuntimeError("a bug")))  # still logged
    assert malformed.filter(record("connect handler error", ValueError("x")))
