"""The one writer of environment responses: the smoothed state of each session (or user) in
Redis, the response stored when it should change (hysteresis), its `environment` event, and
deletion. Readings of every source come through here, so smoothing and hysteresis behave the
same whatever the source."""
import json

from flask import current_app

from app.environment.mapping import environment_response, should_emit, smooth_state
from app.environment.schemas import EnvironmentResponseSchema
from app.models import EnvironmentResponse
from app.realtime import emit_many, session_room

# Smoothing state lives in Redis for a day after the last reading of its session (or user).
STATE_TTL_S = 24 * 3600
# What the smoothing takes from a reading.
OBSERVED_FIELDS = ("probabilities", "valence", "arousal", "intensity", "timestamp")


def _state_key(owner, session):
    return f"env:state:{session.id}" if session is not None else f"env:state:user:{owner.id}"


def update_environments(items, pipe=None):
    """Smooth each reading's state with it, in order; items are (owner, session, reading).
    Returns, per item, the response stored when it should change (hysteresis against the
    last one emitted), else None. Silent windows change nothing. One Redis read, one bulk
    insert and one Redis write for the lot, so a worker's batch costs about what one does;
    given a Redis pipeline, the write is queued on it for the caller to execute (a round trip
    fewer)."""
    spoken = [(index, item) for index, item in enumerate(items) if not item[2].silence]
    if not spoken:
        return [None] * len(items)
    redis = current_app.extensions["redis"]
    keys = list(dict.fromkeys(_state_key(owner, session) for _, (owner, session, _) in spoken))
    states = {key: json.loads(stored) if stored else {} for key, stored in zip(keys, redis.mget(keys))}
    responses = {}
    for index, (owner, session, reading) in spoken:
        key = _state_key(owner, session)
        observed = {name: getattr(reading, name) for name in OBSERVED_FIELDS}
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
        emit_many([("environment", schema.dump(response), session_room(response.session.id))
                   for response in new if response.session is not None])
    writes = pipe if pipe is not None else redis.pipeline(transaction=False)
    for key in keys:
        writes.set(key, json.dumps(states[key]), ex=STATE_TTL_S)
    if pipe is None:
        writes.execute()
    return [responses.get(index) for index in range(len(items))]


def update_environment(owner, session, reading):
    """Smooth the state with one reading (see update_environments)."""
    return update_environments([(owner, session, reading)])[0]


def record_response(owner, session, reading, response):
    """Store a response computed as a whole (an upload's overall mood), outside any smoothing."""
    return EnvironmentResponse(owner=owner, session=session, reading=reading, **response).save()


def delete_responses(queryset):
    """Delete the responses of `queryset`; returns how many were deleted."""
    return queryset.delete()
