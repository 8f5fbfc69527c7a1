"""Scale-out, shown: HAProxy in front of two web processes (a cookie keeps each client on its
own), two workers and cron, as devtools/cluster.py (`make run-cluster`) runs them.

Clients pinned to each web process (two on each, one over WebSocket and one over Engine.IO's
long-polling, which works only while every poll reaches the same process) stream at once:
every window is answered to its own client, and one collective snapshot reaches clients on
both. An upload posted through one web process is polled through the other. Then web.1 is
killed (SIGKILL) mid-stream: its clients reconnect through the balancer, which sends them to
web.2, and resume their sessions (`start` with `session_id`); no window is stored twice, and
no acknowledged write (a window's `emotion`, a REST reading answered 201) is lost.
"""
import os
import signal
import socket
import sys
import threading
import time

import pymongo
import pytest
import redis as redis_lib
from bson import ObjectId
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

from app.live import ready
from devtools.cluster import COOKIE, Cluster, free_port_block, haproxy_path, served, wait_all_up, web_name
from devtools.stack import DevStack
from mood_mirror.client import ApiClientError, MoodMirrorClient

from audio_fixtures import encode, speech_like

FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}
PASSWORD = "correct horse battery"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}

pytestmark = [pytest.mark.timeout(420),
              pytest.mark.skipif(haproxy_path() is None, reason="haproxy is not installed (scripts/system-deps.sh "
                                 "installs it; Debian: apt-get install haproxy): the scale-out test needs it")]


@pytest.fixture(scope="module")
def cluster(mongo_uri, redis_url, tmp_path_factory):
    redis_lib.Redis.from_url(redis_url).flushdb()
    running = Cluster(mongo_uri.replace("/moodmirror_test", "/moodmirror_cluster"), redis_url,
                      tmp_path_factory.mktemp("cluster"), web=2, workers=2,
                      # Backpressure (dropping a lagging stream's oldest windows) is tested elsewhere;
                      # here a host loaded by others must not make windows count as lost.
                      extra_env={"COLLECTIVE_INTERVAL_SECONDS": "2", "COLLECTIVE_MIN_USERS": "1",
                                 "STREAM_MAX_PENDING": "1000"})
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def db(cluster):
    client = pymongo.MongoClient(cluster.mongo_uri)
    yield client.get_default_database()
    client.close()


def pinned(cluster, web, email=None, access_token=None):
    """A client whose requests the balancer sends to web process `web` (its cookie), signed up
    as `email` or using `access_token`."""
    client = MoodMirrorClient(cluster.base_url, access_token=access_token, timeout=15)
    client.http.cookies.set(COOKIE, web_name(web))
    if email:
        client.register(email, PASSWORD)
    return client


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_every_window(cluster, db, streams, summaries, sessions, timeout):
    """Wait until every stream has heard each of its windows (or been told it was dropped); else
    fail saying where the missing windows are (stored, pending in Redis, or neither), what the
    drain machinery and the queues hold, and the processes' latest log lines."""
    def unheard():
        return [n for n, (live, summary) in enumerate(zip(streams, summaries))
                if len(live.emotions) + live.dropped() < summary["windows"]]

    deadline = time.monotonic() + timeout
    while unheard() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not unheard():
        return
    r = redis_lib.Redis.from_url(cluster.redis_url, decode_responses=True)
    lines = [f"windows unheard after {timeout} s"]
    for n in unheard():
        stored = db.readings.find({"session": ObjectId(sessions[n]), "window_key": {"$exists": True}},
                                  {"window_key": 1})
        lines.append(f"stream {n}: {summaries[n]}; heard {sorted(e['window_index'] for e in streams[n].emotions)}; "
                     f"stored {sorted(int(doc['window_key'].rsplit(':', 1)[1]) for doc in stored)}; "
                     f"pending {r.zrange(ready.pending_key(sessions[n]), 0, -1)}; errors {streams[n].errors}")
    lines.append(f"ready set {r.zcard(ready.READY_KEY)}, "
                 f"waiting {r.zrange(ready.WAITING_KEY, 0, -1, withscores=True)}, "
                 f"drain queued {r.ttl(ready.DRAIN_QUEUED_KEY)} s, lingering {r.exists(ready.LINGER_KEY)}, "
                 f"bell {r.llen(ready.BELL_KEY)}, taken {r.keys('stream:taken:*')}, redis time {r.time()[0]}")
    binary = redis_lib.Redis.from_url(cluster.redis_url)  # RQ keeps pickles
    for queue in Queue.all(connection=binary):
        failed = FailedJobRegistry(queue=queue)
        lines.append(f"queue {queue.name}: {queue.count} queued, {failed.count} failed")
        for job_id in failed.get_job_ids()[-3:]:
            result = (job := queue.fetch_job(job_id)) and job.latest_result()
            lines.append(f"failed job {job_id}: {result.exc_string[-1500:] if result else 'no result kept'}")
    lines += [f"worker {w.name}: {w.get_state()}, job {w.get_current_job_id()}" for w in Worker.all(connection=binary)]
    for name in cluster.processes:  # without the access log's lines
        logged = [line for line in cluster.log(name).splitlines() if ' HTTP/1.1" ' not in line]
        lines += [f"--- {name}.log", *logged[-25:]]
    pytest.fail("\n".join(lines), pytrace=False)


def pcm(seconds, seed):
    return (speech_like(seconds, 16000, seed=seed)[0] * 32767).astype("int16")


def stream_all(streams, seconds):
    """Every stream sends `seconds` of speech at real-time pace, all at once."""
    threads = [threading.Thread(target=live.stream_samples, args=(pcm(seconds, n),), daemon=True)
               for n, live in enumerate(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)


def test_make_run_cluster_serves_through_the_balancer_and_stops_on_ctrl_c(tmp_path):
    """`make run-cluster`'s process (python -m devtools.cluster) with its embedded servers."""
    port = free_port_block(3)
    stack = DevStack(workers=2, var_dir=tmp_path / "var", command=[sys.executable, "-m", "devtools.cluster"],
                     PORT=port, WEB=2)
    web_ports = [port + 1, port + 2]
    try:
        stack.wait_healthy(timeout=120)
        wait_all_up(stack.log_dir / "haproxy.sock")
        wait_until(lambda: MoodMirrorClient(stack.base_url).json("GET", "/api/system/health")
                   ["components"]["workers"]["count"] == 2, 60, "both workers")
        before = served(stack.log_dir / "haproxy.sock")
        for _ in range(4):  # new clients, no cookie: round robin
            assert MoodMirrorClient(stack.base_url).json("GET", "/api/system/health")["status"] == "ok"
        after = served(stack.log_dir / "haproxy.sock")
        assert {web: after[web] - before[web] for web in after} == {"web1": 2, "web2": 2}
    finally:
        stack.stop()  # Ctrl-C
    assert f"http://127.0.0.1:{port}/" in stack.log("stack")
    for p in [port, *web_ports]:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still open after Ctrl-C"


def test_upload_posted_through_one_web_is_polled_through_the_other(cluster):
    poster = pinned(cluster, 1, "uploader@example.com")
    poller = pinned(cluster, 2, access_token=poster.access_token)
    before = cluster.served()
    job_id = poster.analyze(encode("wav_s16", 4.0), filename="talk.wav")["job_id"]
    posted = cluster.served()
    assert (posted["web1"] - before["web1"], posted["web2"] - before["web2"]) == (1, 0)
    polls, deadline = 0, time.monotonic() + 90
    while (job := poller.job(job_id))["status"] not in ("finished", "failed") and time.monotonic() < deadline:
        polls += 1
        time.sleep(0.25)
    polled = cluster.served()
    assert (polled["web1"] - posted["web1"], polled["web2"] - posted["web2"]) == (0, polls + 1)
    assert job["status"] == "finished", job
    assert job["result"]["windows"] >= 2


def test_streams_on_both_webs_survive_the_loss_of_one(cluster, db):
    # Two clients on each web process: one over WebSocket, one over long-polling.
    placement = [(1, ["websocket"]), (1, ["polling"]), (2, ["websocket"]), (2, ["polling"])]
    clients = [pinned(cluster, web, f"streamer{n}@example.com") for n, (web, _) in enumerate(placement)]
    first = [c.live_stream(wait_timeout=20, transports=t) for c, (_, t) in zip(clients, placement)]
    sessions = []
    for live, (_, transports) in zip(first, placement):
        live.connect()
        assert live.sio.transport() == transports[0]
        live.join_collective()
        sessions.append(live.start(FORMAT, name="cluster"))
    on_web1 = [n for n, (web, _) in enumerate(placement) if web == 1]

    # REST writes through web.1 all along, across its death: each 201 must be stored.
    writer_client = pinned(cluster, 1, access_token=clients[0].access_token)
    rest_session = writer_client.json("POST", "/api/sessions", json={"name": "writes"})["id"]
    acknowledged, refused, unexpected, stop_writing = [], [], [], threading.Event()

    def write():
        while not stop_writing.is_set():
            try:
                acknowledged.append((time.monotonic(), writer_client.json(
                    "POST", "/api/readings",
                    json={"session_id": rest_session, "source": "manual", "probabilities": PROBABILITIES})["id"]))
            except ApiClientError as error:
                (refused if error.status in (None, 502, 503) else unexpected).append((error.status, error.code))
                time.sleep(0.1)
            time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()

    stream_all(first, 4.0)
    wait_until(lambda: all(len(live.emotions) >= 3 for live in first), 60, "emotions on every stream")
    wait_until(lambda: all(live.collective for live in first), 30, "a collective snapshot on every client")

    # Every client heard only its own session's windows, in order.
    for live, session_id in zip(first, sessions):
        assert {e["session_id"] for e in live.emotions} == {session_id}
        indices = [e["window_index"] for e in live.emotions]
        assert indices == list(range(len(indices)))
    # One snapshot (the same id) reached clients on both web processes.
    seen = [{s["id"] for s in live.collective} for live in first]
    assert (seen[0] | seen[1]) & (seen[2] | seen[3]), seen

    # web.1 dies mid-stream: its clients are cut off, web.2's are not.
    killed_at = time.monotonic()
    os.killpg(cluster.processes["web.1"].pid, signal.SIGKILL)
    cluster.processes["web.1"].wait(10)
    wait_until(lambda: not any(first[n].sio.connected for n in on_web1), 60, "web.1's clients to notice")
    assert all(first[n].sio.connected for n in range(4) if n not in on_web1)
    heard_before = {n: {e["window_index"] for e in first[n].emotions} for n in on_web1}

    # They reconnect through the balancer (same cookie: web.1 is down, so web.2) and resume.
    resumed = {}
    for n in on_web1:
        live = clients[n].live_stream(wait_timeout=20, transports=placement[n][1]).connect()
        live.join_collective()
        assert live.start(FORMAT, session_id=sessions[n]) == sessions[n]
        resumed[n] = live
    second = [resumed.get(n, first[n]) for n in range(4)]
    stream_all(second, 4.0)
    summaries = [live.stop() for live in second]
    wait_for_every_window(cluster, db, second, summaries, sessions, timeout=120)
    stop_writing.set()
    writer.join(30)
    for live in first + list(resumed.values()):
        live.close()

    for n, (live, summary, session_id) in enumerate(zip(second, summaries, sessions)):
        assert summary["dropped_total"] == 0 and live.errors == [], (n, summary, live.errors, live.lags)
        assert {e["session_id"] for e in live.emotions} == {session_id}
        indices = sorted(e["window_index"] for e in live.emotions)
        if n in resumed:
            assert summary["session_id"] == session_id
            own = indices[len(indices) - summary["windows"]:]
            assert own == list(range(own[0], own[0] + summary["windows"])), "every resumed window"
            assert own[0] > max(heard_before[n]), "numbering goes on, never reusing a window key"
            # Windows the first stream had queued before web.1 died are answered to the session's
            # room, which the resumed client has joined, also when they are analysed after it did.
            late = indices[:len(indices) - summary["windows"]]
            assert all(max(heard_before[n]) < index < own[0] for index in late), (late, heard_before[n], own)
            heard = heard_before[n] | set(indices)
        else:
            assert indices == list(range(summary["windows"])), "the streams on web.2 went on undisturbed"
            heard = set(indices)
        readings = list(db.readings.find({"session": ObjectId(session_id)}, {"window_key": 1, "owner": 1}))
        keys = [r["window_key"] for r in readings]
        assert len(keys) == len(set(keys)), "no window stored twice"
        assert {f"{session_id}:{i}" for i in heard} <= set(keys), "every answered window stored"
        owner = db.sessions.find_one({"_id": ObjectId(session_id)})["owner"]
        assert {r["owner"] for r in readings} == {owner}
        assert db.sessions.find_one({"_id": ObjectId(session_id)})["status"] == "ended"

    assert not unexpected, unexpected[:5]
    assert any(at > killed_at for at, _ in acknowledged), "REST writes go on through web.2"
    stored = {str(r["_id"]) for r in db.readings.find({"session": ObjectId(rest_session)}, {"_id": 1})}
    lost = {reading_id for _, reading_id in acknowledged} - stored
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged readings lost"
    assert cluster.processes["web.2"].poll() is None and cluster.processes["haproxy"].poll() is None
