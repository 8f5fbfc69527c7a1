"""The one writer of environment responses: the smoothed state of each session (or user) in
Redis, the response stored when it should change (hysteresis), its `environment` event, and
deletion. Readings of every source come through here, so smoothing and hysteresis behave the
same whatever the source."""
import json

from flask import current_app

from app.environment.mapping import emitted_summary, environment_response, should_emit, smooth_state
from app.environment.schemas import payload
from app.models import EnvironmentResponse
from app.models.base import check_son, utcnow
from app.realtime import emit_many, session_room

# Smoothing state lives in Redis for a day after the last reading of its session (or user).
STATE_TTL_S = 24 * 3600
# What the smoothing takes from a reading.
OBSERVED_FIELDS = ("probabilities", "valence", "arousal", "intensity", "timestamp")


def _id(reference):
    """A reference given as a document or as its id (None stays None)."""
    return getattr(reference, "id", reference)


def _state_key(owner, session):
    return f"env:state:{_id(session)}" if session is not None else f"env:state:user:{_id(owner)}"


def state_keys(items):
    """The Redis keys of the smoothing states that update_environments(items) reads."""
    return list(dict.fromkeys(_state_key(owner, session) for owner, session, reading in items
                              if not reading.get("silence")))


def update_environments(items, pipe=None, states=None):
    """Smooth each reading's state with it, in order; items are (owner, session, reading), owner
    and session documents or ids, the reading a stored document (a dict with its `_id`, as
    app/readings/store.py store_readings returns). Returns, per item, the response stored when it
    should change (hysteresis against the last one emitted), as a stored document, else None.
    Silent windows change nothing. One Redis read, one bulk insert of raw documents and one
    Redis write for the lot, so a worker's batch costs about what one does. Given a Redis
    pipeline, the `environment` events and the states' write are queued on it for the caller
    to execute, and `states` may be what the caller read from state_keys(items) already
    (round trips fewer)."""
    spoken = [(index, item) for index, item in enumerate(items) if not item[2].get("silence")]
    if not spoken:
        return [None] * len(items)
    redis = current_app.extensions["redis"]
    keys = state_keys(items)
    states = {key: json.loads(stored) if stored else {}
              for key, stored in zip(keys, redis.mget(keys) if states is None else states)}
    responses = {}
    for index, (owner, session, reading) in spoken:
        key = _state_key(owner, session)
        observed = {name: reading[name] for name in OBSERVED_FIELDS}
        state = smooth_state(states[key].get("state"), observed)
        proposal = environment_response(state)
        emitted, emitted_at = states[key].get("emitted"), states[key].get("emitted_at")
        since = None if emitted_at is None or state["timestamp"] is None else state["timestamp"] - emitted_at
        if should_emit(emitted, proposal, seconds_since=since):
            responses[index] = check_son(EnvironmentResponse, {
                "owner": _id(owner), **({"session": _id(session)} if session is not None else {}),
                "reading": reading["_id"], "created_at": utcnow(), **proposal})
            emitted, emitted_at = emitted_summary(proposal), state["timestamp"]
        states[key] = {"state": state, "emitted": emitted, "emitted_at": emitted_at}
    own = pipe is None
    if own:
        pipe = redis.pipeline(transaction=False)
    if responses:
        new = list(responses.values())
        EnvironmentResponse._get_collection().insert_many(new)  # sets each document's _id
        emit_many([("environment", payload(response), session_room(response["session"]))
                   for response in new if "session" in response], pipe)
    for key in keys:
        pipe.set(key, json.dumps(states[key]), ex=STATE_TTL_S)
    if own:
        pipe.execute()
    return [responses.get(index) for index in range(len(items))]


def update_environment(owner, session, reading):
    """Smooth the state with one reading, a stored document (see update_environments)."""
    return update_environments([(owner, session, reading)])[0]


def record_response(owner, session, reading, response):
    """Store a response computed as a whole (an upload's overall mood), outside any smoothing."""
    return EnvironmentResponse(owner=owner, session=session, reading=reading, **response).save()


def delete_responses(queryset):
    """Delete the responses of `queryset`; returns how many were deleted."""
    return queryset.delete()
