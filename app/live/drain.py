"""The drain job (queue `analysis`): workers analyse the windows of every live stream as they
come to the ready set (app/live/ready.py), store them and emit the results.

Safe to retry: every window has a unique key, so a retried job finds the reading it stored
before and never writes it twice.
"""
import json
import time
from datetime import UTC, datetime

from bson import ObjectId
from flask import current_app
from rq import get_current_job

from app.analysis.model import Carry, model_version, predict_adapted
from app.auth import voice
from app.auth.tokens import GONE_PREFIX, gone_key
from app.environment.store import delete_responses, state_keys, update_environments
from app.live import ready
from app.models import EmotionReading, EnvironmentResponse
from app.readings.schemas import payload
from app.readings.store import delete_readings, store_readings
from app.realtime import emit_many, session_room
from audio.pcm import from_s16

# How long one drain job goes on taking streamed windows before it hands over, and the
# longest it blocks on the ready list at a time (below the Redis client's 3 s socket timeout).
DRAIN_BUDGET_S = 2.0
DRAIN_WAIT_S = 1.0
DRAIN_WAIT_MIN_S = 0.01  # a timeout of 0 would block for ever
# A job back from a batch takes a backlog of fewer windows than this only after waiting
# STREAM_BATCH_WAIT_MS for more: a batch's fixed costs are about four windows' worth.
GATHER_BELOW = 4
# How often cron looks for windows that no drain job will take (restart_drain).
RESTART_CHECK_SECONDS = 5


def drain_windows():
    """Analyse the windows of every live stream as they come to the ready set (app/live/ready.py),
    waiting for them while there are none, until DRAIN_BUDGET_S has passed.

    One job does not stand for one window or one batch: RQ's own bookkeeping costs about
    3 ms of worker CPU per job (measured, docs/BENCHMARKS.md), more than a window's model
    call. So a drain job stays, blocked on the ready set's bell when there is nothing to do.
    Woken by a window, it waits STREAM_BATCH_WAIT_MS for more (no other job is woken
    meanwhile) and takes them together; coming back from a batch, it takes the backlog (up to
    STREAM_BATCH_MAX, the fairest first) at once if it holds GATHER_BELOW windows or more, and
    else waits STREAM_BATCH_WAIT_MS for more first: a batch has fixed costs (a dozen round trips
    to Redis and MongoDB) of about four windows' worth of worker CPU (docs/BENCHMARKS.md). The
    web process enqueues a drain job only when no job is waiting and none is queued; a job
    clears that mark as it starts, so while every drain job is busy the next window queues one
    for another worker. Windows taken and not yet stored stay under this job's id, so its
    retry (after an error, or after its worker died) stores them instead of losing them;
    stored windows are never stored twice (unique window keys). The budget lets uploads and
    collective jobs in between."""
    redis = current_app.extensions["redis"]
    job_id = get_current_job().id
    ready.drain_started(redis)
    deadline = time.monotonic() + DRAIN_BUDGET_S
    batch_max = current_app.config["STREAM_BATCH_MAX"]
    linger_s = current_app.config["STREAM_BATCH_WAIT_MS"] / 1000
    taken = ready.take_windows(redis, job_id, batch_max, GONE_PREFIX)
    while True:
        gather = isinstance(taken, int)  # a few windows wait (ready.queue_take)
        if not gather and not taken:
            left = deadline - time.monotonic()
            gather = ready.wait_for_window(redis, job_id, min(max(left, DRAIN_WAIT_MIN_S), DRAIN_WAIT_S))
        if gather:
            # A batch's fixed costs are shared by the windows that come meanwhile (the linger flag,
            # set by the window that rang or by the take that counted, holds their bell back).
            time.sleep(linger_s)
            taken = ready.take_windows(redis, job_id, batch_max, GONE_PREFIX)
        if taken:
            # The batch's last round trip takes the next windows while the budget lasts: the backlog
            # at once if it makes a batch, else a count of those waiting and a wait for more.
            taken = _analyze_windows(job_id, taken, batch_max if time.monotonic() < deadline else 0,
                                     GATHER_BELOW if linger_s > 0 else 0, linger_s * 1000)
        if not taken and time.monotonic() >= deadline:
            break
    if ready.ready_count(redis) and ready.claim_drain(redis):
        ready.enqueue_drain(redis)


def restart_drain():
    """Cron's watchdog (every RESTART_CHECK_SECONDS): queue a drain job for windows that no drain
    job waits for or is queued for. A web process that dies between claiming the drain flag and
    enqueueing leaves the flag set for DRAIN_QUEUED_TTL_S with no job behind it; windows added
    meanwhile queue none, and if no window comes after, they would never be analysed."""
    redis = current_app.extensions["redis"]
    if ready.claim_stranded(redis):
        ready.enqueue_drain(redis)


def _analyze_windows(job_id, taken, take_next=0, fewer_than=0, linger_ms=0):
    """Analyse a batch of streamed windows (from any sessions), each adapted to its speaker's
    voice baseline as it was before the window (app/auth/voice.py); store them; emit `emotion`
    for each (and `environment` on change); then write back the baselines. `taken` is what
    app/live/ready.py take_windows took; their audio (s16le at 16 kHz) and their speakers'
    baselines come in one round trip. A descriptor is the JSON of session_id, user_id, index,
    start_s, end_s, received_at (epoch seconds). With take_next, the batch's last round trip
    also takes up to that many next windows for this job, which it returns (as take_windows
    would), or, while fewer than `fewer_than` wait, their number (ready.queue_take).

    An account deleted while its windows were being analysed: the check after the writes
    finds it marked gone (app/auth/accounts.py marks it before deleting anything), and what
    this batch stored for it is deleted again."""
    redis = current_app.extensions["redis"]
    users, sessions = ready.users_of(taken), ready.sessions_of(taken)
    taken, values = ready.with_audio(redis, taken, [voice.key(u) for u in users] +
                                     [ready.frames_key(s) for s in sessions])
    baselines, carry = values[:len(users)], Carry(dict(zip(sessions, values[len(users):])))
    live = [(json.loads(descriptor), pcm) for descriptor, pcm in taken if descriptor is not None]
    if not live:
        pipe = redis.pipeline(transaction=False)
        ready.taken_done(pipe, job_id, users)
        pipe.execute()
        return []
    windows = [w for w, _ in live]
    speakers = [w["user_id"] for w in windows]
    voices = voice.load(speakers, dict(zip(users, baselines)))
    predictions = predict_adapted([from_s16(pcm) for _, pcm in live], speakers, voices,
                                  [(w["session_id"], w["index"], w["start_s"]) for w in windows], carry)
    version = model_version()
    ids = {value: ObjectId(value) for w in windows for value in (w["user_id"], w["session_id"])}
    # Three round trips after the model, whatever the batch's size: the readings' insert, then one
    # Redis pipeline (their rollups, their `emotion` events, the environment states to smooth), the
    # environment responses' insert, then another pipeline that ends the batch.
    pipe = redis.pipeline(transaction=False)
    readings = store_readings([
        (ids[w["user_id"]], ids[w["session_id"]], prediction, "stream",
         {"window_key": f"{w['session_id']}:{w['index']}", "window_start": w["start_s"], "window_end": w["end_s"],
          "timestamp": datetime.fromtimestamp(w["received_at"], UTC), "model_version": version})
        for w, prediction in zip(windows, predictions)
    ], pipe)
    emit_many([("emotion", payload(reading) | {"window_index": w["index"], "received_at": w["received_at"]},
                session_room(w["session_id"])) for w, reading in zip(windows, readings)], pipe)
    items = [(ids[w["user_id"]], ids[w["session_id"]], reading) for w, reading in zip(windows, readings)]
    pipe.mget(state_keys(items) or ["-"])  # MGET needs a key
    states = pipe.execute()[-1]
    stored_at = time.time()
    # The environment responses and the baselines follow every `emotion` of the batch, which they must not delay.
    pipe = redis.pipeline(transaction=False)
    update_environments(items, pipe, states)
    # The same round trip ends the batch: the environment events and states, the baselines, the
    # frames handed on, the windows done, their latencies, and whether an account was deleted
    # meanwhile (then what was stored for it goes again).
    saved = voice.save(voices, pipe)
    for session_id in carry.changed:  # before the users' holds go, as their baselines do
        pipe.set(ready.frames_key(session_id), carry.encoded(session_id), ex=ready.FRAMES_TTL_S)
    ready.taken_done(pipe, job_id, users)
    for w in windows:
        ready.done(pipe, w["session_id"], w["index"])
    ready.record_window_latencies(pipe, [(stored_at - w["received_at"]) * 1000 for w in windows])
    user_ids = list(dict.fromkeys(speakers))
    gone_at = len(pipe)
    pipe.mget([gone_key(u) for u in user_ids])
    if take_next:
        ready.queue_take(pipe, job_id, take_next, GONE_PREFIX, fewer_than, linger_ms)
    results = pipe.execute()
    saved(results)
    gone = [user_id for user_id, marked in zip(user_ids, results[gone_at]) if marked]
    if gone:
        redis.delete(*{ready.frames_key(w["session_id"]) for w in windows if w["user_id"] in gone})
        delete_responses(EnvironmentResponse.objects(owner__in=gone))
        delete_readings(EmotionReading.objects(owner__in=gone))
    return results[-1] if take_next else []
