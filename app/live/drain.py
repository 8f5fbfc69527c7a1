"""The drain job (queue `analysis`): workers analyse the windows of every live stream as they
come to the ready list (app/live/ready.py), store them and emit the results.

Safe to retry: every window has a unique key, so a retried job finds the reading it stored
before and never writes it twice.
"""
import json
import time
from datetime import UTC, datetime

from flask import current_app
from rq import get_current_job

from app.analysis.model import model_version, predict_adapted
from app.auth import voice
from app.environment.store import update_environments
from app.live import ready
from app.models import EmotionSession, User
from app.readings.schemas import ReadingSchema
from app.readings.store import record_readings
from app.realtime import emit, session_room
from audio.pcm import from_s16

# How long one drain job goes on taking streamed windows before it hands over, and the
# longest it blocks on the ready list at a time (below the Redis client's 3 s socket timeout).
DRAIN_BUDGET_S = 2.0
DRAIN_WAIT_S = 1.0
DRAIN_WAIT_MIN_S = 0.01  # a timeout of 0 would block for ever


def drain_windows():
    """Analyse the windows of every live stream as they come to the ready list (app/live/ready.py),
    waiting on it while it is empty, until DRAIN_BUDGET_S has passed.

    One job does not stand for one window or one batch: RQ's own bookkeeping costs about
    3 ms of worker CPU per job (measured, docs/BENCHMARKS.md), more than a window's model
    call. So a drain job stays, blocked on the ready list when there is nothing to do, and
    takes each window the moment it is added, or the whole backlog (up to STREAM_BATCH_MAX)
    when it comes back from a batch. The web process enqueues a drain job only when no job
    is waiting on the list and none is queued; a job clears that mark as it starts, so while
    every drain job is busy the next window queues one for another worker. Windows taken and
    not yet stored stay under this job's id, so its retry (after an error, or after its
    worker died) stores them instead of losing them; stored windows are never stored twice
    (unique window keys). The budget lets uploads and collective jobs in between."""
    redis = current_app.extensions["redis"]
    job_id = get_current_job().id
    ready.drain_started(redis)
    deadline = time.monotonic() + DRAIN_BUDGET_S
    while True:
        left = deadline - time.monotonic()
        taken = (ready.take_windows(redis, job_id, current_app.config["STREAM_BATCH_MAX"])
                 or ready.wait_for_window(redis, job_id, min(max(left, DRAIN_WAIT_MIN_S), DRAIN_WAIT_S)))
        if taken:
            _analyze_windows(job_id, [json.loads(descriptor) for descriptor in taken])
        if time.monotonic() >= deadline:
            break
    if ready.ready_count(redis) and ready.claim_drain(redis):
        ready.enqueue_drain(redis)


def _analyze_windows(job_id, windows):
    """Analyse a batch of streamed windows (from any sessions), each adapted to its speaker's
    voice baseline as it was before the window (app/auth/voice.py); store them; emit `emotion`
    for each (and `environment` on change); then write back the baselines. A window is a dict: session_id,
    user_id, index, start_s, end_s, received_at (epoch seconds); its audio (s16le at 16 kHz)
    waits in Redis (app/live/ready.py)."""
    redis = current_app.extensions["redis"]
    audio = ready.pending_audio(redis, [(w["session_id"], w["index"]) for w in windows])
    # A window no longer pending was dropped by backpressure while it waited.
    live = [w for w, pcm in zip(windows, audio) if pcm is not None]
    pipe = redis.pipeline(transaction=False)
    ready.taken_done(pipe, job_id)
    if not live:
        pipe.execute()
        return
    speakers = [w["user_id"] for w in live]
    voices = voice.load(speakers)
    predictions = predict_adapted([from_s16(pcm) for pcm in audio if pcm is not None], speakers, voices)
    version = model_version()
    owners = {w["user_id"]: User(id=w["user_id"]) for w in live}
    sessions = {w["session_id"]: EmotionSession(id=w["session_id"]) for w in live}
    readings = record_readings([
        (owners[w["user_id"]], sessions[w["session_id"]], prediction, "stream",
         {"window_key": f"{w['session_id']}:{w['index']}", "window_start": w["start_s"], "window_end": w["end_s"],
          "timestamp": datetime.fromtimestamp(w["received_at"], UTC), "model_version": version})
        for w, prediction in zip(live, predictions)
    ])
    schema = ReadingSchema()
    for w, reading in zip(live, readings):
        payload = schema.dump(reading) | {"window_index": w["index"], "received_at": w["received_at"]}
        emit("emotion", payload, session_room(w["session_id"]))
        ready.done(pipe, w["session_id"], w["index"])
    ready.record_window_latencies(pipe, [(time.time() - w["received_at"]) * 1000 for w in live])
    pipe.execute()
    # The baselines and environment responses follow every `emotion` of the batch, which they must not delay.
    voice.save(voices)
    update_environments([(owners[w["user_id"]], sessions[w["session_id"]], reading)
                         for w, reading in zip(live, readings)])
