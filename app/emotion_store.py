"""Storing a reading and the environment response it leads to, for every source.

The REST API (manual readings) and the workers (streamed and uploaded windows) both come
through here, so smoothing, hysteresis and storage behave the same whatever the source.
"""
import json

from flask import current_app
from mongoengine import NotUniqueError

from ml.affect import describe
from ml.params import CLASSES

from app.domain.environment import environment_response, should_emit, smooth_state
from app.models import SILENCE, EmotionReading, EnvironmentResponse
from app.realtime import emit, session_room
from app.serializers import EnvironmentResponseSchema

# Smoothing state lives in Redis for a day after the last reading of its session (or user).
STATE_TTL_S = 24 * 3600


def _state_key(owner, session):
    return f"env:state:{session.id}" if session is not None else f"env:state:user:{owner.id}"


def describe_probabilities(probabilities):
    """A full prediction (dominant, confidence, valence, arousal, intensity) from probabilities."""
    dominant = max(CLASSES, key=probabilities.__getitem__)
    return {"probabilities": dict(probabilities), "dominant": dominant, "confidence": probabilities[dominant],
            **describe(probabilities)}


def record_reading(owner, session, prediction, *, source, **fields):
    """Save one reading; returns (reading, created). A window_key already stored is not saved
    again (a retried job), and the stored reading is returned with created=False."""
    silence = bool(prediction.get("silence"))
    reading = EmotionReading(
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
    try:
        reading.save()
    except NotUniqueError:
        return EmotionReading.objects.get(window_key=fields["window_key"]), False
    return reading, True


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
