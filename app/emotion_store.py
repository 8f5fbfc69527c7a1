"""Storing a reading and the environment response it leads to, for every source.

The REST API (manual readings) and the workers (streamed and uploaded windows) both come
through here, so smoothing, hysteresis and storage behave the same whatever the source.
"""
import json

from flask import current_app
from pymongo.errors import BulkWriteError

from ml.affect import describe
from ml.params import CLASSES

from app.domain.environment import environment_response, should_emit, smooth_state
from app.models import SILENCE, EmotionReading, EnvironmentResponse
from app.realtime import emit, session_room
from app.serializers import EnvironmentResponseSchema

DUPLICATE_KEY = 11000
# Smoothing state lives in Redis for a day after the last reading of its session (or user).
STATE_TTL_S = 24 * 3600


def _state_key(owner, session):
    return f"env:state:{session.id}" if session is not None else f"env:state:user:{owner.id}"


def describe_probabilities(probabilities):
    """A full prediction (dominant, confidence, valence, arousal, intensity) from probabilities."""
    dominant = max(CLASSES, key=probabilities.__getitem__)
    return {"probabilities": dict(probabilities), "dominant": dominant, "confidence": probabilities[dominant],
            **describe(probabilities)}


def _reading(owner, session, prediction, source, fields):
    silence = bool(prediction.get("silence"))
    return EmotionReading(
        owner=owner,
        session=session,
        source=source,
        silence=silence,
        probabilities=None if silence else prediction["probabilities"],
        dominant=SILENCE if silence else prediction["dominant"],
        confidence=prediction.get("confidence"),
        valence=prediction.get("valence"),
        arousal=prediction.get("arousal"),
        intensity=prediction.get("intensity"),
        **fields,
    )


def record_readings(items):
    """Save readings in one unordered bulk insert; items are (owner, session, prediction,
    source, fields). Returns the stored readings in order. A window_key already stored (a
    retried job) is not written again: the stored reading is returned in its place."""
    readings = [_reading(*item) for item in items]
    for reading in readings:
        reading.validate()
    documents = [reading.to_mongo() for reading in readings]
    try:
        result = EmotionReading._get_collection().insert_many(documents, ordered=False)
        ids = result.inserted_ids
    except BulkWriteError as error:
        if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise
        duplicates = {e["index"] for e in error.details["writeErrors"]}
        stored = {r.window_key: r for r in EmotionReading.objects(
            window_key__in=[readings[i].window_key for i in duplicates])}
        ids = [None if i in duplicates else doc["_id"] for i, doc in enumerate(documents)]
        readings = [stored[r.window_key] if i in duplicates else r for i, r in enumerate(readings)]
    for reading, new_id in zip(readings, ids):
        if new_id is not None:
            reading.id = new_id
    return readings


def record_reading(owner, session, prediction, *, source, **fields):
    """Save one reading (see record_readings)."""
    return record_readings([(owner, session, prediction, source, fields)])[0]


def update_environment(owner, session, reading):
    """Smooth the state with this reading; store and return a response when it should change
    (hysteresis against the last one emitted), else None. Silent windows change nothing."""
    if reading.silence:
        return None
    redis = current_app.extensions["redis"]
    key = _state_key(owner, session)
    stored = redis.get(key)
    previous = json.loads(stored) if stored else {}
    observed = {name: getattr(reading, name) for name in ("probabilities", "valence", "arousal", "intensity", "timestamp")}
    state = smooth_state(previous.get("state"), observed)
    proposal = environment_response(state)
    emitted = previous.get("emitted")
    response = None
    if should_emit(emitted, proposal):
        response = EnvironmentResponse(owner=owner, session=session, reading=reading, **proposal).save()
        emitted = proposal
        if session is not None:
            emit("environment", EnvironmentResponseSchema().dump(response), session_room(session.id))
    redis.set(key, json.dumps({"state": state, "emitted": emitted}), ex=STATE_TTL_S)
    return response
