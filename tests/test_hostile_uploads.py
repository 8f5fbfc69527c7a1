"""Hostile uploads against the running stack (web and worker as the Procfile runs them, real
Redis, the MongoDB-wire server): the outside review's decoding bombs (docs/SECURITY.md,
"Hostile uploads").

    the 8 Hz FLAC bomb            415 at upload; fed to the worker directly (as if it had got
                                  past the web), 415 too, and the worker stays small
    a FLAC bomb at 4 kHz          passes the header probe (it claims 4 ms); the worker stops at
                                  the length limit (422) and stays under 600 MB
    64 channels at 384 kHz        415 at upload, and from the worker too (not a 500 after retries)
    a MOV with a 16000 x 16000    the web process never decodes the picture (its memory stays
    PNG frame and 4 s of AAC      flat); the worker analyses the audio without decoding it either

The worker's peak memory is sampled while it works (psutil, every 10 ms).
"""
import threading
import time
from datetime import UTC, datetime

import psutil
import pymongo
import pytest
import redis as redis_lib
from bson import ObjectId
from rq import Callback, Queue, Retry

from devtools.stack import Stack
from mood_mirror.client import ApiClientError, MoodMirrorClient

from audio_fixtures import encode_array, flac_bomb, mov_with_huge_png, speech_like, wav_header

PASSWORD = "correct horse battery"
WORKER_RSS_LIMIT_MB = 600  # the review's target: no upload of <= 25 MB raises worker RSS above this

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    redis_lib.Redis.from_url(redis_url).flushdb()
    own_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_hostile")
    pymongo.MongoClient(own_mongo).drop_database("moodmirror_hostile")
    running = Stack(own_mongo, redis_url, tmp_path_factory.mktemp("stack"), workers=1).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(stack):
    client = MoodMirrorClient(stack.base_url, timeout=30)
    client.register("hostile@example.com", PASSWORD)
    return client


@pytest.fixture(scope="module")
def db(stack):
    return pymongo.MongoClient(stack.mongo_uri).get_default_database()


def process_of(stack, name):
    """The Procfile process itself: the stack runs each command through /bin/sh, which forks it."""
    shell = psutil.Process(stack.processes[name].pid)
    return (shell.children() or [shell])[0]


class PeakMemory:
    """The largest RSS of a process while the block runs, in MB."""

    def __init__(self, pid):
        self.process, self.peak, self._stop = psutil.Process(pid), 0.0, threading.Event()
        assert "python" in self.process.name() or "rq" in self.process.name(), self.process.cmdline()

    def __enter__(self):
        self.start = self.process.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def refused_at_upload(client, db, data, status, code):
    jobs_before = db.analysis_jobs.count_documents({})
    with pytest.raises(ApiClientError) as refused:
        client.analyze(data, filename="hostile")
    assert (refused.value.status, refused.value.code) == (status, code), refused.value
    assert db.analysis_jobs.count_documents({}) == jobs_before, "no job for a refused upload"
    return refused.value


def enqueued_past_the_web(stack, client, db, data):
    """An analysis job for `data` put on the queue as the upload endpoint does, without its
    header probe: what the worker must survive on its own, whatever got past the web."""
    owner = ObjectId(client.json("GET", "/api/auth/profile")["id"])
    job_id = db.analysis_jobs.insert_one({
        "owner": owner, "status": "queued", "progress": 0.0, "filename": "hostile", "content_type": "audio/flac",
        "size_bytes": len(data), "attempts": 0, "error": {}, "result": {}, "created_at": datetime.now(UTC),
    }).inserted_id
    redis = redis_lib.Redis.from_url(stack.redis_url)
    redis.set(f"upload:{job_id}", data, ex=3600)
    Queue("analysis", connection=redis).enqueue(
        "app.analysis.jobs.analyze_upload", str(job_id), job_id=f"upload-{job_id}",
        retry=Retry(max=3, interval=[1, 5, 15]), on_failure=Callback("app.analysis.jobs.upload_failed"),
        job_timeout=600)
    return str(job_id)


def analysed(stack, client, job_id):
    """Wait for the job while sampling the worker's memory; the job and the peak RSS in MB."""
    with PeakMemory(process_of(stack, "worker.1").pid) as memory:
        job = client.wait_for_job(job_id, timeout=300, poll=0.2)
    assert stack.processes["worker.1"].poll() is None, stack.log("worker.1")[-3000:]
    print(f"worker RSS {memory.start:.0f} MB before, {memory.peak:.0f} MB at most: {job['status']}",
          job.get("error", {}).get("code", ""))
    return job, memory.peak


def test_the_8_hz_flac_bomb_is_refused_at_upload(client, db):
    data = flac_bomb(rate=8)
    assert len(data) < 10_000
    error = refused_at_upload(client, db, data, 415, "unsupported_audio")
    assert "8 Hz" in error.message


def test_the_8_hz_flac_bomb_is_refused_by_the_worker_too(stack, client, db):
    job_id = enqueued_past_the_web(stack, client, db, flac_bomb(rate=8))
    job, peak = analysed(stack, client, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "unsupported_audio", job
    assert job["error"]["status"] == 415 and job["attempts"] == 1, "a client error, never retried"
    assert peak < WORKER_RSS_LIMIT_MB, f"worker RSS reached {peak:.0f} MB"


def test_a_flac_bomb_that_passes_the_probe_stops_at_the_limit_and_the_worker_stays_small(stack, client, db):
    data = flac_bomb(rate=4000, frames=40)  # 40 x 16.4 s, STREAMINFO claiming 16 samples
    accepted = client.analyze(data, filename="bomb.flac")
    job, peak = analysed(stack, client, accepted["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "audio_too_long", job
    assert job["error"]["status"] == 422
    assert peak < WORKER_RSS_LIMIT_MB, f"worker RSS reached {peak:.0f} MB"


def test_64_channels_at_384_khz_are_refused_at_upload_and_by_the_worker(stack, client, db):
    data = wav_header(64, 384000, seconds=0.2)  # 9.8 MB
    refused_at_upload(client, db, data, 415, "unsupported_audio")
    job_id = enqueued_past_the_web(stack, client, db, data)
    job, peak = analysed(stack, client, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "unsupported_audio", job
    assert job["error"]["status"] == 415 and job["attempts"] == 1
    assert peak < WORKER_RSS_LIMIT_MB


def test_a_huge_video_frame_is_decoded_by_neither_web_nor_worker(stack, client):
    data = mov_with_huge_png(16000)  # 768 MB as pixels
    with PeakMemory(process_of(stack, "web").pid) as web_memory:
        accepted = client.analyze(data, filename="huge.mov")
    print(f"web RSS {web_memory.start:.0f} MB before, {web_memory.peak:.0f} MB at most")
    assert web_memory.peak - web_memory.start < 100, f"web RSS {web_memory.start:.0f} -> {web_memory.peak:.0f} MB"
    job, peak = analysed(stack, client, accepted["job_id"])
    assert job["status"] in ("finished", "failed"), job
    assert job["status"] == "finished" or job["error"]["code"] == "no_speech", job
    assert job["duration_s"] == pytest.approx(4.0, abs=0.1)
    assert peak < WORKER_RSS_LIMIT_MB, f"worker RSS reached {peak:.0f} MB"


def test_the_longest_upload_accepted_keeps_the_worker_under_the_limit(stack, client):
    """Not hostile, the other end of the same promise: 600 s (MAX_AUDIO_SECONDS) of 16 kHz
    speech, a 19 MB WAV, analysed in full."""
    data = encode_array(speech_like(600, 16000), 16000, "wav_s16")
    assert len(data) <= 25 * 2**20
    job, peak = analysed(stack, client, client.analyze(data, filename="long.wav")["job_id"])
    assert job["status"] == "finished" and 598 <= job["result"]["windows"] <= 601, job.get("error")
    assert peak < WORKER_RSS_LIMIT_MB, f"worker RSS reached {peak:.0f} MB"
