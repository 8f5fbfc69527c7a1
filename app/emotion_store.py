"""Storing a reading and the environment response it leads to, for every source.

The REST API (manual readings) and the workers (streamed and uploaded windows) both come
through here, so smoothing, hysteresis and storage behave the same whatever the source.
"""
import json

from flask import current_app
from pymongo.errors import BulkWriteError

from ml.affect import describe
from ml.params import CLASSES

from app import collective
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
    collective.tally([reading for reading, new_id in zip(readings, ids) if new_id is not None])
    return readings


def record_reading(owner, session, prediction, *, source, **fields):
    """Save one reading (see record_readings)."""
    return record_readings([(owner, session, prediction, source, fields)])[0]


def update_environments(items):
    """Smooth each reading's state with it, in order; items are (owner, session, reading).
    Returns, per item, the response stored when it should change (hysteresis against the
    last one emitted), else None. Silent windows change nothing. One Redis read, one bulk
    insert and one Redis write for the lot, so a worker's batch costs about what one does."""
    spoken = [(index, item) for index, item in enumerate(items) if not item[2].silence]
    if not spoken:
        return [None] * len(items)
    redis = current_app.extensions["redis"]
    keys = list(dict.fromkeys(_state_key(owner, session) for _, (owner, session, _) in spoken))
    states = {key: json.loads(stored) if stored else {} for key, stored in zip(keys, redis.mget(keys))}
    responses = {}
    for index, (owner, session, reading) in spoken:
        key = _state_key(owner, session)
        observed = {name: getattr(reading, name) for name in ("probabilities", "valence", "arousal", "intensity", "timestamp")}
        state = smooth_state(states[key].get("state"), observed)
        proposal = environment_response(state)
        emitted = states[key].get("emitted")
        if should_emit(emitted, proposal):
            responses[index] = EnvironmentResponse(owner=owner, session=session, reading=reading, **proposal)
            emitted = proposal
        states[key] = {"state": state, "emitted": emitted}
    if responses:
        new = list(responses.values())
        for response in new:
            response.validate()
        ids = EnvironmentResponse._get_collection().insert_many([r.to_mongo() for r in new]).inserted_ids
        schema = EnvironmentResponseSchema()
        for response, new_id in zip(new, ids):
            response.id = new_id
            if response.session is not None:
                emit("environment", schema.dump(response), session_room(response.session.id))
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, json.dumps(states[key]), ex=STATE_TTL_S)
    pipe.execute()
    return [responses.get(index) for index in range(len(items))]


def update_environment(owner, session, reading):
    """Smooth the state with one reading (see update_environments)."""
    return update_environments([(owner, session, reading)])[0]
