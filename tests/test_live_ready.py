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
    """An empty ready set, nothing taken, no drain job marked queued and no fair-queueing
    clock; what a test leaves is cleared too."""
    def clear():
        redis.delete(ready_list.READY_KEY, ready_list.DRAIN_QUEUED_KEY, ready_list.WAITING_KEY, ready_list.CLOCK_KEY,
                     ready_list.BELL_KEY, ready_list.LINGER_KEY, *redis.keys(ready_list.taken_key("*")),
                     *redis.keys("stream:finish:*"), *redis.keys(ready_list.HOLD_PREFIX + "*"))
    clear()
    yield
    clear()


def add(redis, session_id, index, max_pending, pcm, user="user-a"):
    """Returns (dropped, claimed)."""
    stopped, dropped, claimed = ready_list.add_pending(redis, session_id, user, index, max_pending, pcm,
                                                       f"{session_id}:{index}".encode())
    assert stopped == 0
    return dropped, claimed


def take(redis, job_id, count):
    """(descriptor, audio) per window taken."""
    return ready_list.with_audio(redis, ready_list.take_windows(redis, job_id, count, "test:gone:"))[0]


def test_a_pending_window_keeps_its_descriptor_and_audio_until_done(redis, session_id, ready):
    assert add(redis, session_id, 0, 3, b"\x01\x00" * 4) == ([], True)
    assert take(redis, "job-a", 5) == [(f"{session_id}:0".encode(), b"\x01\x00" * 4)]
    pipe = redis.pipeline()
    ready_list.done(pipe, session_id, 0)
    ready_list.taken_done(pipe, "job-a", ["user-a"])
    pipe.execute()
    assert not redis.exists(ready_list.window_key(session_id, 0), ready_list.audio_key(session_id, 0),
                            ready_list.pending_key(session_id), ready_list.HOLD_PREFIX + "user-a")
    assert take(redis, "job-a", 5) == []


def test_backpressure_drops_the_oldest_windows_and_their_audio(redis, session_id, ready):
    dropped = []
    for index in range(5):
        dropped += add(redis, session_id, index, 3, bytes([index]) * 2)[0]
    assert dropped == [0, 1]
    assert not redis.exists(ready_list.window_key(session_id, 0), ready_list.window_key(session_id, 1),
                            ready_list.audio_key(session_id, 0), ready_list.audio_key(session_id, 1))
    # nothing outlives an abandoned stream
    assert redis.ttl(ready_list.window_key(session_id, 4)) > 0 and redis.ttl(ready_list.audio_key(session_id, 4)) > 0
    # dropped windows leave the ready set too: only the pending ones are taken
    assert [pcm for _, pcm in take(redis, "job-a", 10)] == [b"\x02\x02", b"\x03\x03", b"\x04\x04"]


def test_a_window_dropped_after_it_was_taken_is_skipped(redis, session_id, ready):
    add(redis, session_id, 0, 1, b"a")
    assert take(redis, "job-a", 1) == [(f"{session_id}:0".encode(), b"a")]
    add(redis, session_id, 1, 1, b"b")  # drops window 0 while job-a holds it
    assert take(redis, "job-a", 1) == [(None, None)]  # job-a's retry finds it gone


def test_one_drain_job_is_asked_for_until_one_starts(redis, session_id, ready):
    assert [add(redis, session_id, i, 10, b"x")[1] for i in range(3)] == [True, False, False]
    assert not ready_list.claim_drain(redis)
    ready_list.drain_started(redis)
    assert add(redis, session_id, 3, 10, b"x")[1] is True  # for another worker
    # A lost enqueue stalls nothing for long.
    assert 0 < redis.ttl(ready_list.DRAIN_QUEUED_KEY) <= ready_list.DRAIN_QUEUED_TTL_S


def test_windows_behind_a_lost_enqueue_get_a_drain_job_from_the_watchdog(redis, session_id, ready):
    assert not ready_list.claim_stranded(redis)  # nothing waits
    # A web process claimed the flag for its window and died before it enqueued the job.
    assert add(redis, session_id, 0, 10, b"x")[1] is True
    assert add(redis, session_id, 1, 10, b"x")[1] is False  # a stream's last window: none comes after
    assert not ready_list.claim_stranded(redis)  # the flag still stands
    redis.delete(ready_list.DRAIN_QUEUED_KEY)  # ... until it expires
    assert ready_list.claim_stranded(redis)
    assert not ready_list.claim_stranded(redis)  # one job asked for, as add_pending asks
    redis.delete(ready_list.DRAIN_QUEUED_KEY)
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] + 5})
    assert not ready_list.claim_stranded(redis)  # a waiting job takes them
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] - 1})
    assert ready_list.claim_stranded(redis)  # one that died while waiting does not


def test_no_drain_job_is_asked_for_while_one_waits_for_windows(redis, session_id, ready):
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] + 5})
    assert add(redis, session_id, 0, 10, b"x")[1] is False
    assert not redis.exists(ready_list.DRAIN_QUEUED_KEY)
    # a worker that died while waiting no longer counts once its wait must have ended
    redis.zadd(ready_list.WAITING_KEY, {"job-waiting": redis.time()[0] - 1})
    assert add(redis, session_id, 1, 10, b"x")[1] is True
    assert redis.zcard(ready_list.WAITING_KEY) == 0


def test_a_waiting_drain_job_wakes_the_moment_a_window_is_added(redis, session_id, ready):
    claims = []
    adder = threading.Timer(0.2, lambda: claims.append(add(redis, session_id, 0, 10, b"x")[1]))
    adder.start()
    started = time.monotonic()
    assert ready_list.wait_for_window(redis, "job-a", 1.0) is True
    assert 0.15 < time.monotonic() - started < 0.9
    adder.join()
    assert claims == [False]  # the waiting job was counted: no other job was asked for
    assert redis.zcard(ready_list.WAITING_KEY) == 0
    assert take(redis, "job-a", 5) == [(f"{session_id}:0".encode(), b"x")]
    # nothing comes: the job stops waiting (and counting as waiting) after its timeout
    assert ready_list.wait_for_window(redis, "job-b", 0.1) is False
    assert redis.zcard(ready_list.WAITING_KEY) == 0
    assert add(redis, session_id, 1, 10, b"x")[1] is True


def test_windows_added_while_a_drain_job_gathers_a_batch_wake_no_other_job(redis, session_id, ready):
    assert ready_list.add_pending(redis, session_id, "user-a", 0, 10, b"x", b"d", linger_ms=500)[2]
    assert ready_list.wait_for_window(redis, "job-a", 0.1) is True
    add(redis, session_id, 1, 10, b"y")
    add(redis, session_id, 2, 10, b"z")
    assert ready_list.wait_for_window(redis, "job-b", 0.1) is False  # not rung: they join job-a's batch
    assert [pcm for _, pcm in take(redis, "job-a", 10)] == [b"x", b"y", b"z"]
    add(redis, session_id, 3, 10, b"w")  # taking ended the gathering: the next window rings again
    assert ready_list.wait_for_window(redis, "job-b", 0.1) is True


def test_the_ready_set_stays_bounded_while_no_worker_runs(redis, session_id, ready, monkeypatch):
    monkeypatch.setattr(ready_list, "READY_MAX", 3)
    for index in range(5):
        add(redis, session_id, index, 10, b"x")
    assert ready_list.ready_count(redis) == 3
    assert [d for d, _ in take(redis, "job-a", 10)] == [f"{session_id}:{i}".encode() for i in (2, 3, 4)]


def finish(redis, job_id, users=("user-a",)):
    pipe = redis.pipeline()
    ready_list.taken_done(pipe, job_id, list(users))
    pipe.execute()


def test_drain_jobs_take_windows_in_order_and_a_retry_gets_back_what_it_took(redis, session_id, ready):
    for index in range(5):
        add(redis, session_id, index, 10, b"x")
    assert [d for d, _ in take(redis, "job-a", 2)] == [f"{session_id}:0".encode(), f"{session_id}:1".encode()]
    # job-a failed or its worker died before storing: its retry is given the same windows again
    assert [d for d, _ in take(redis, "job-a", 2)] == [f"{session_id}:0".encode(), f"{session_id}:1".encode()]
    assert redis.ttl(ready_list.taken_key("job-a")) > 0
    finish(redis, "job-a")
    assert ready_list.ready_count(redis) == 3
    assert [d for d, _ in take(redis, "job-b", 2)] == [f"{session_id}:2".encode(), f"{session_id}:3".encode()]
    finish(redis, "job-b")
    assert [d for d, _ in take(redis, "job-a", 2)] == [f"{session_id}:4".encode()]
    assert take(redis, "job-c", 2) == []


def test_a_users_windows_go_to_one_job_at_a_time_so_they_come_out_in_order(redis, ready):
    """While job-a analyses user-a's windows, job-b passes user-a's next ones by and takes
    other users'; once job-a is done, user-a's windows are free for whichever job comes."""
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    add(redis, first, 0, 10, b"a")
    assert [d for d, _ in take(redis, "job-a", 1)] == [f"{first}:0".encode()]
    add(redis, first, 1, 10, b"a")
    add(redis, first, 2, 10, b"a")
    add(redis, second, 0, 10, b"b", user="user-b")
    add(redis, second, 1, 10, b"b", user="user-b")
    assert [d for d, _ in take(redis, "job-b", 5)] == [f"{second}:0".encode(), f"{second}:1".encode()]
    assert ready_list.ready_count(redis) == 2
    finish(redis, "job-b", ["user-b"])
    assert take(redis, "job-b", 5) == []  # user-a is still job-a's
    finish(redis, "job-a")
    assert [d for d, _ in take(redis, "job-b", 5)] == [f"{first}:1".encode(), f"{first}:2".encode()]
    assert redis.get(ready_list.HOLD_PREFIX + "user-a") == b"job-b"
    # A job's release leaves alone a hold that lapsed and went to another job.
    finish(redis, "job-a")
    assert redis.get(ready_list.HOLD_PREFIX + "user-a") == b"job-b"
    assert 0 < redis.ttl(ready_list.HOLD_PREFIX + "user-a") <= ready_list.HOLD_TTL_S
    finish(redis, "job-b")
    assert not redis.keys(ready_list.HOLD_PREFIX + "*")


def test_a_job_back_from_a_batch_waits_for_a_small_backlog_to_grow(redis, session_id, ready):
    """Fewer windows than make a batch: nothing taken, their number said, and new windows ring
    for no other job meanwhile; enough of them, or a job that must take (the bell's): taken."""
    for index in range(2):
        add(redis, session_id, index, 10, b"x")
    pipe = redis.pipeline()
    ready_list.queue_take(pipe, "job-a", 16, "test:gone:", fewer_than=3, linger_ms=25)
    assert pipe.execute() == [2]
    assert 0 < redis.pttl(ready_list.LINGER_KEY) <= 75
    redis.delete(ready_list.BELL_KEY)  # rung by the first window, for no job here
    assert add(redis, session_id, 2, 10, b"x") == ([], False) and redis.llen(ready_list.BELL_KEY) == 0
    pipe = redis.pipeline()
    ready_list.queue_take(pipe, "job-a", 16, "test:gone:", fewer_than=3, linger_ms=25)
    assert [d for d, _ in ready_list.with_audio(redis, pipe.execute()[0])[0]] == [
        f"{session_id}:{i}".encode() for i in range(3)]
    assert not redis.exists(ready_list.LINGER_KEY)
    finish(redis, "job-a")
    pipe = redis.pipeline()
    ready_list.queue_take(pipe, "job-a", 16, "test:gone:", fewer_than=3, linger_ms=25)
    assert pipe.execute() == [[]]  # none waits: the bell, not a wait, brings the next
    add(redis, session_id, 3, 10, b"x")
    assert [d for d, _ in take(redis, "job-a", 16)] == [f"{session_id}:3".encode()]
    finish(redis, "job-a")


def test_a_retried_job_holds_its_users_again(redis, session_id, ready):
    """A job whose worker died: its hold lapses; its retry takes back its windows and their user."""
    add(redis, session_id, 0, 10, b"x")
    take(redis, "job-a", 5)
    redis.delete(ready_list.HOLD_PREFIX + "user-a")
    add(redis, session_id, 1, 10, b"y")
    assert [d for d, _ in take(redis, "job-a", 5)] == [f"{session_id}:0".encode()]
    assert take(redis, "job-b", 5) == []
    finish(redis, "job-a")
    assert [d for d, _ in take(redis, "job-b", 5)] == [f"{session_id}:1".encode()]
    finish(redis, "job-b")


def test_workers_take_windows_round_robin_over_users_so_a_flood_waits_behind_everyone(redis, ready):
    """One user floods 3 streams with 30 windows each; then 4 other users send one window
    each: one round gives each user one window, the flooder's first among them; the flood's
    windows keep their order per stream."""
    flood = [uuid.uuid4().hex for _ in range(3)]
    for index in range(30):
        for session in flood:
            add(redis, session, index, 100, b"f", user="flooder")
    others = [uuid.uuid4().hex for _ in range(4)]
    for n, session in enumerate(others):
        add(redis, session, 0, 100, b"o", user=f"user-{n}")
    first = take(redis, "job-a", 5)
    assert {d for d, _ in first} >= {f"{s}:0".encode() for s in others}
    # A user who comes back while the flood's windows are being taken is served in the next
    # round, beside the flooder's next window, not after the flood's backlog.
    add(redis, others[0], 1, 100, b"o", user="user-0")
    taken = [d.decode() for d, _ in first]
    for count in (2, 200):
        finish(redis, "job-a", ["flooder", "user-0", "user-1", "user-2", "user-3"])
        taken += [d.decode() for d, _ in take(redis, "job-a", count)]
        if count == 2:
            assert f"{others[0]}:1" in taken[-2:]
    rest = [m for m in taken if m.split(":")[0] in flood]
    assert len(rest) == 90
    for session in flood:
        assert [int(m.split(":")[1]) for m in rest if m.startswith(session)] == list(range(30))


def test_a_token_revoked_or_an_account_deleted_stops_the_next_window(redis, session_id, ready):
    redis.set("test:revoked:jti", 1, ex=60)
    assert ready_list.add_pending(redis, session_id, "user-a", 0, 10, b"x", b"d", "test:revoked:jti",
                                  "test:gone:user-a") == (ready_list.TOKEN_REVOKED, [], False)
    redis.set("test:gone:user-a", 1, ex=60)
    assert ready_list.add_pending(redis, session_id, "user-a", 0, 10, b"x", b"d", "test:revoked:other",
                                  "test:gone:user-a") == (ready_list.ACCOUNT_GONE, [], False)
    assert not redis.exists(ready_list.window_key(session_id, 0), ready_list.audio_key(session_id, 0))
    assert ready_list.ready_count(redis) == 0
    redis.delete("test:revoked:jti", "test:gone:user-a")


def test_a_window_whose_audio_is_gone_when_taken_counts_as_dropped(redis, session_id, ready):
    """Backpressure may drop a taken window (its audio with it) before the worker reads the audio."""
    add(redis, session_id, 0, 10, b"x")
    add(redis, session_id, 1, 10, b"y")
    redis.delete(ready_list.audio_key(session_id, 0))
    assert take(redis, "job-a", 5) == [(None, None), (f"{session_id}:1".encode(), b"y")]


def test_the_audio_and_other_keys_of_a_batch_come_in_one_read(redis, session_id, ready):
    add(redis, session_id, 0, 10, b"x", user="user-b")
    add(redis, session_id, 1, 10, b"y", user="user-a")
    add(redis, session_id, 2, 10, b"z", user="user-b")
    redis.set("test:baseline:user-a", b"a", ex=60)
    taken = ready_list.take_windows(redis, "job-a", 5, "test:gone:")
    users = ready_list.users_of(taken)
    assert users == ["user-b", "user-a"]
    windows, values = ready_list.with_audio(redis, taken, [f"test:baseline:{u}" for u in users])
    assert [pcm for _, pcm in windows] == [b"x", b"y", b"z"] and values == [None, b"a"]
    redis.delete("test:baseline:user-a")


def test_windows_of_an_account_deleted_while_they_wait_are_forgotten(redis, session_id, ready):
    add(redis, session_id, 0, 10, b"x", user="user-gone")
    add(redis, session_id, 1, 10, b"y", user="user-kept")
    redis.set("test:gone:user-gone", 1, ex=60)
    assert take(redis, "job-a", 5) == [(None, None), (f"{session_id}:1".encode(), b"y")]
    assert not redis.exists(ready_list.window_key(session_id, 0), ready_list.audio_key(session_id, 0))
    redis.delete("test:gone:user-gone")


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
            _, _, claimed = ready_list.add_pending(redis, sid, str(owner.id), index, 10, pcm, descriptor)
            if claimed:
                ready_list.enqueue_drain(redis)
        handed_over = []
        monkeypatch.setattr(ready_list, "enqueue_drain", lambda r: handed_over.append(1) or enqueue_drain(r))
        run_worker(app)
        keys = [r.window_key for r in EmotionReading.objects(session=session).order_by("window_start")]
        assert keys == [f"{sid}:{i}" for i in range(5)]
        assert len(handed_over) == 2  # jobs of 2, 2 and 1 windows
        assert ready_list.ready_count(redis) == 0
        assert not redis.keys("stream:taken:*") and not redis.keys(ready_list.window_key(sid, "*"))
        assert not redis.keys(ready_list.audio_key(sid, "*"))
        assert not redis.exists(ready_list.pending_key(sid))
