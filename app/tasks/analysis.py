"""RQ jobs of the analysis queue: draining the windows of live streams, and one per uploaded file.

Both are safe to retry: every window has a unique key, so a retried job finds the reading it
stored before and never writes it twice.
"""
import io
import json
import time
from datetime import UTC, datetime

import numpy as np
from flask import current_app
from rq import get_current_job
from ml.params import CLASSES

from app import streams
from app.domain.audio import AudioError, decode
from app.domain.environment import environment_response
from app.domain.stream import Windower
from app.emotion_store import describe_probabilities, record_readings, update_environments
from app.models import AnalysisJob, EmotionSession, EnvironmentResponse, User
from app.models.base import utcnow
from app.realtime import emit, session_room
from app.serializers import ReadingSchema
from app.system_stats import model_version, record_window_latencies
from app.tasks.model import recognizer
from app.uploads import pop_upload, upload_bytes

# Windows analysed per model call for uploads; progress is reported between batches.
UPLOAD_BATCH = 16
# How long one drain job goes on taking streamed windows before it hands over, and the
# longest it blocks on the ready list at a time (below the Redis client's 3 s socket timeout).
DRAIN_BUDGET_S = 2.0
DRAIN_WAIT_S = 1.0
DRAIN_WAIT_MIN_S = 0.01  # a timeout of 0 would block for ever
# Client errors found while decoding: no retry, the answer would not change.
AUDIO_ERROR_STATUS = {"unsupported_audio": 415, "empty_audio": 422, "audio_too_long": 422}


def _pcm_to_float(pcm):
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def drain_windows():
    """Analyse the windows of every live stream as they come to the ready list (app.streams),
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
    streams.drain_started(redis)
    deadline = time.monotonic() + DRAIN_BUDGET_S
    while True:
        left = deadline - time.monotonic()
        taken = (streams.take_windows(redis, job_id, current_app.config["STREAM_BATCH_MAX"])
                 or streams.wait_for_window(redis, job_id, min(max(left, DRAIN_WAIT_MIN_S), DRAIN_WAIT_S)))
        if taken:
            _analyze_windows(job_id, [json.loads(descriptor) for descriptor in taken])
        if time.monotonic() >= deadline:
            break
    if streams.ready_count(redis) and streams.claim_drain(redis):
        streams.enqueue_drain(redis)


def _analyze_windows(job_id, windows):
    """Analyse a batch of streamed windows (from any sessions) in one model call; store them;
    emit `emotion` for each (and `environment` on change). A window is a dict: session_id,
    user_id, index, start_s, end_s, received_at (epoch seconds); its audio (s16le at 16 kHz)
    waits in Redis (app.streams)."""
    redis = current_app.extensions["redis"]
    audio = streams.pending_audio(redis, [(w["session_id"], w["index"]) for w in windows])
    # A window no longer pending was dropped by backpressure while it waited.
    live = [w for w, pcm in zip(windows, audio) if pcm is not None]
    pipe = redis.pipeline(transaction=False)
    streams.taken_done(pipe, job_id)
    if not live:
        pipe.execute()
        return
    predictions = recognizer().predict_batch([_pcm_to_float(pcm) for pcm in audio if pcm is not None])
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
        streams.done(pipe, w["session_id"], w["index"])
    record_window_latencies(pipe, [(time.time() - w["received_at"]) * 1000 for w in live])
    pipe.execute()
    # Environment responses follow every `emotion` of the batch, which they must not delay.
    update_environments([(owners[w["user_id"]], sessions[w["session_id"]], reading) for w, reading in zip(live, readings)])


def _fail(job, code, message, status):
    job.update(set__status="failed", set__error={"code": code, "message": message, "status": status},
               set__finished_at=utcnow())


def analyze_upload(job_id):
    """Decode an uploaded file, analyse it window by window, store readings and the result."""
    job = AnalysisJob.objects(id=job_id).first()
    if job is None:
        return None
    job.update(set__status="started", inc__attempts=1)
    data = upload_bytes(job_id)
    if data is None:
        _fail(job, "upload_expired", "The uploaded audio is no longer available; upload it again", 410)
        return None
    try:
        waveform = decode(io.BytesIO(data), target_rate=16000, max_seconds=current_app.config["MAX_AUDIO_SECONDS"])
    except AudioError as error:
        _fail(job, error.code, error.message, AUDIO_ERROR_STATUS.get(error.code, 422))
        pop_upload(job_id)
        return None

    windower = Windower()
    windows = windower.feed(waveform)
    last = windower.flush()
    windows += [last] if last is not None else []
    if not windows:
        _fail(job, "too_short", "The recording is shorter than one second", 422)
        pop_upload(job_id)
        return None

    owner, session = job.owner, job.session
    started = job.created_at
    timeline, stored = [], []
    for first in range(0, len(windows), UPLOAD_BATCH):
        batch = windows[first:first + UPLOAD_BATCH]
        predictions = recognizer().predict_batch([w.samples for w in batch])
        readings = record_readings([
            (owner, session, prediction, "upload",
             {"window_key": f"{job_id}:{window.index}", "window_start": window.start_s, "window_end": window.end_s,
              "timestamp": started, "model_version": model_version()})
            for window, prediction in zip(batch, predictions)
        ])
        stored += readings
        for window, reading in zip(batch, readings):
            timeline.append({"start": window.start_s, "end": window.end_s, "silence": reading.silence,
                             "probabilities": reading.probabilities, "dominant": reading.dominant,
                             "confidence": reading.confidence, "valence": reading.valence,
                             "arousal": reading.arousal, "intensity": reading.intensity})
        job.update(set__progress=round(min(first + UPLOAD_BATCH, len(windows)) / len(windows), 3))

    spoken = [r for r in stored if not r.silence]
    if not spoken:
        _fail(job, "no_speech", "No speech was found in the recording", 422)
        pop_upload(job_id)
        return None
    overall = describe_probabilities({c: float(np.mean([r.probabilities[c] for r in spoken])) for c in CLASSES})
    environment = environment_response(overall)
    EnvironmentResponse(owner=owner, session=session, reading=spoken[-1], **environment).save()
    job.update(set__status="finished", set__progress=1.0, set__finished_at=utcnow(), set__duration_s=waveform.size / 16000,
               set__result={"overall": overall, "timeline": timeline, "environment": environment,
                            "windows": len(windows), "silent_windows": len(stored) - len(spoken),
                            "model_version": model_version()})
    pop_upload(job_id)
    return {"windows": len(windows)}


def upload_failed(rq_job, connection, exc_type, exc_value, traceback):
    """RQ failure callback: after the last retry, the analysis job is failed with the reason."""
    if rq_job.retries_left:
        return
    job = AnalysisJob.objects(id=rq_job.args[0]).first()
    if job is not None and job.status != "failed":
        _fail(job, "analysis_failed", f"Analysis failed after {job.attempts} attempts: {exc_type.__name__}", 500)
