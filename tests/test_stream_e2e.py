"""Live streaming end to end: real web (eventlet) and worker processes, a Socket.IO client
streaming real speech at real-time pace, and the database checked afterwards."""
import json
from pathlib import Path

import numpy as np
import pymongo
import pytest
import redis as redis_lib
import soundfile

from devtools.stack import Stack
from mood_mirror.client import ApiClientError, MoodMirrorClient

ROOT = Path(__file__).resolve().parent.parent
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"
ARTIFACTS = ROOT / "test-artifacts"
FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}


def speech(seconds_wanted=10.0):
    """Real speech: RAVDESS clips joined with short pauses, or generated voiced audio without it."""
    if (RAVDESS / "metadata.csv").exists():
        clips = sorted((RAVDESS / "audio" / "ravdess_21").glob("*.flac"))[::7]
        parts, total = [], 0.0
        for clip in clips:
            audio, rate = soundfile.read(clip, dtype="float32")
            assert rate == 16000
            parts += [audio, np.zeros(4000, np.float32)]
            total += (audio.size + 4000) / 16000
            if total >= seconds_wanted:
                break
        audio = np.concatenate(parts)
    else:
        t = np.arange(int(seconds_wanted * 16000)) / 16000
        audio = (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    e2e_redis = redis_url.rsplit("/", 1)[0] + "/14"
    redis_lib.Redis.from_url(e2e_redis).flushdb()
    e2e_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_e2e")
    running = Stack(e2e_mongo, e2e_redis, tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


@pytest.fixture
def db(stack):
    client = pymongo.MongoClient(stack.mongo_uri)
    yield client.get_default_database()
    client.close()


def signed_in(stack, email):
    client = MoodMirrorClient(stack.base_url)
    client.register(email, "correct horse battery")
    return client


def test_stream_real_speech_each_window_one_reading_and_one_event_in_order(stack, db):
    client = signed_in(stack, "streamer@example.com")
    pcm = speech(10.0)
    with client.live_stream() as live:
        session_id = live.start(FORMAT, name="e2e")
        sent = live.stream_samples(pcm, chunk_ms=100, realtime=True)
        summary = live.stop()
        live.wait_for_emotions(summary["windows"], timeout=60)
    windows = summary["windows"]
    seconds = pcm.size / 16000
    # Warm-up windows at 1 s and 2 s, then one per second of audio, then the partial tail.
    assert windows >= int(seconds) - 1
    assert summary["dropped_total"] == 0 and live.lags == [] and live.errors == []
    indices = [e["window_index"] for e in live.emotions]
    assert indices == list(range(windows)), "every window once, in order"
    readings = list(db.readings.find({"session": __import__("bson").ObjectId(session_id)}))
    assert len(readings) == windows
    assert sorted(r["window_key"] for r in readings) == sorted(f"{session_id}:{i}" for i in range(windows))
    spoken = [e for e in live.emotions if not e["silence"]]
    assert spoken, "real speech gives emotions"
    for event in spoken:
        assert abs(sum(event["probabilities"].values()) - 1) < 1e-3
        assert -1 <= event["valence"] <= 1 and -1 <= event["arousal"] <= 1 and 0 <= event["intensity"] <= 1
    assert live.environments, "an environment response follows the first emotion"
    assert db.sessions.find_one({"_id": __import__("bson").ObjectId(session_id)})["status"] == "ended"

    latencies = sorted((live.received_at[e["window_index"]] - e["received_at"]) * 1000 for e in live.emotions)
    record = {"windows": windows, "audio_seconds": seconds, "chunks": len(sent),
              "p50_ms": latencies[len(latencies) // 2], "max_ms": latencies[-1]}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "stream-latency.json").write_text(json.dumps(record, indent=2))
    print("stream latency", record)


def test_stream_rejections_keep_the_connection_up(stack):
    client = signed_in(stack, "careless@example.com")
    with client.live_stream(wait_timeout=10) as live:
        live.send(b"\x00\x00")  # audio before start
        live.sio.emit("start", {"format": {"encoding": "mp3", "sample_rate": 16000, "channels": 1}})
        live.sio.emit("start", {"format": FORMAT, "colour": "red"})
        live.start(FORMAT)
        live.send(b"\x00\x00\x00")  # odd byte count for s16le
        live.send("not bytes")
        live.send(b"\x00\x00" * 16000 * 2)  # 2 s in one chunk: over the 1 s limit
        live.sio.emit("join", {"session_id": "0" * 24})
        live.send(b"\x00\x00" * 1600)  # a good chunk still goes through
        summary = live.stop()
        assert live.sio.connected
    codes = [e["code"] for e in live.errors]
    assert codes == ["not_started", "invalid_format", "invalid_start", "misaligned_chunk", "invalid_chunk_type",
                     "chunk_too_large", "session_not_found"]
    assert live.errors[1]["field"] == "format.encoding"
    assert summary["windows"] == 0  # 0.1 s of audio: shorter than the 1 s minimum window


def test_stream_needs_a_valid_token(stack):
    client = MoodMirrorClient(stack.base_url, access_token="not-a-token")
    with pytest.raises(ApiClientError) as refused:
        client.live_stream(wait_timeout=5).connect()
    assert refused.value.code == "token_invalid"


def test_backpressure_drops_the_oldest_windows_and_says_so(mongo_uri, redis_url, tmp_path):
    """No worker yet and a client sending far faster than real time: the pending windows stay
    bounded (the oldest dropped, `lag` events), the connection stays up, and once a worker
    runs only the newest windows are analysed."""
    own_redis = redis_url.rsplit("/", 1)[0] + "/10"
    redis_lib.Redis.from_url(own_redis).flushdb()
    stack = Stack(mongo_uri.replace("/moodmirror_test", "/moodmirror_lag"), own_redis, tmp_path, workers=0,
                  extra_env={"STREAM_MAX_PENDING": "3"}).start()
    try:
        client = signed_in(stack, "hasty@example.com")
        with client.live_stream() as live:
            live.start(FORMAT)
            live.stream_samples(speech(8.0), chunk_ms=100, realtime=False)
            summary = live.stop()
            assert live.sio.connected
            pending = redis_lib.Redis.from_url(own_redis).zrange(f"stream:pending:{summary['session_id']}", 0, -1)
            assert sorted(int(i) for i in pending) == list(range(summary["windows"] - 3, summary["windows"]))
            dropped = [i for lag in live.lags for i in lag["dropped_windows"]]
            assert dropped == list(range(summary["windows"] - 3))
            assert summary["dropped_total"] == len(dropped) and live.lags[-1]["dropped_total"] == len(dropped)

            stack.start_process("worker.1", stack.commands["worker"])
            live.sio.emit("join", {"session_id": summary["session_id"]})
            live.wait_for_emotions(summary["windows"], timeout=60)
        last_three = list(range(summary["windows"] - 3, summary["windows"]))
        assert sorted(e["window_index"] for e in live.emotions) == last_three
    finally:
        stack.stop()
