"""The upload job (queue `analysis`): decode an uploaded recording, file it under a session
(its own, named after the file, unless its owner attached it to one), analyse it window by
window (each adapted to the owner's voice baseline as it was before the window, which the
recording's speech then extends: app/auth/voice.py), store its readings, an environment
response and the result.

Safe to retry: every window has a unique key, so a retried job finds the reading it stored
before and never writes it twice.
"""
import io
from datetime import timedelta

import numpy as np
from flask import current_app

from app.analysis.model import Carry, model_version, predict_adapted
from app.analysis.summary import breakdown
from app.analysis.uploads import audio_error_status, pop_upload, upload_bytes
from app.auth import voice
from app.environment.mapping import environment_response
from app.environment.store import record_response
from app.models import AnalysisJob
from app.models.base import utcnow
from app.readings.store import record_readings
from app.sessions.store import discard_upload_session, finish_upload_session, upload_session
from audio import SAMPLE_RATE
from audio.decode import AudioError, decode
from audio.windows import Windower
from ml.inference import reading as reading_of
from ml.params import CLASSES

# Windows analysed per model call; progress is reported between batches.
UPLOAD_BATCH = 16


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
        waveform = decode(io.BytesIO(data), target_rate=SAMPLE_RATE,
                          max_seconds=current_app.config["MAX_AUDIO_SECONDS"])
    except AudioError as error:
        _fail(job, error.code, error.message, audio_error_status(error))
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

    owner, duration_s = job.owner, waveform.size / SAMPLE_RATE
    session = upload_session(job, duration_s)
    speaker = str(owner.id)
    # Each window is placed at its position in the recording, taken to end at the upload.
    started = job.created_at - timedelta(seconds=duration_s)
    timeline, stored = [], []
    carry = Carry()
    for first in range(0, len(windows), UPLOAD_BATCH):
        batch = windows[first:first + UPLOAD_BATCH]
        voices = voice.load([speaker])
        predictions = predict_adapted([w.samples for w in batch], [speaker] * len(batch), voices,
                                      [(job_id, w.index, w.start_s) for w in batch], carry)
        voice.save(voices)
        readings = record_readings([
            (owner, session, prediction, "upload",
             {"window_key": f"{job_id}:{window.index}", "window_start": window.start_s, "window_end": window.end_s,
              "timestamp": started + timedelta(seconds=window.start_s), "model_version": model_version()})
            for window, prediction in zip(batch, predictions)
        ])
        stored += readings
        for window, reading in zip(batch, readings):
            timeline.append({"start": window.start_s, "end": window.end_s, "silence": reading.silence,
                             "probabilities": reading.probabilities, "dominant": reading.dominant,
                             "confidence": reading.confidence, "uncertain": reading.uncertain,
                             "valence": reading.valence,
                             "arousal": reading.arousal, "intensity": reading.intensity})
        job.update(set__progress=round(min(first + UPLOAD_BATCH, len(windows)) / len(windows), 3))

    spoken = [r for r in stored if not r.silence]
    if not spoken:
        _fail(job, "no_speech", "No speech was found in the recording", 422)
        discard_upload_session(job)
        pop_upload(job_id)
        return None
    overall = reading_of([np.mean([r.probabilities[c] for r in spoken]) for c in CLASSES])
    environment = environment_response(overall)
    record_response(owner, session, spoken[-1], environment)
    finish_upload_session(job)
    job.update(set__status="finished", set__progress=1.0, set__finished_at=utcnow(), set__duration_s=duration_s,
               set__result={"overall": overall, **breakdown(r.dominant for r in spoken),
                            "timeline": timeline, "environment": environment,
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
        discard_upload_session(job)
