"""A session's analytics and insights (app/sessions/analytics.py), computed from its series
(app/readings/series.py) on the audio clock, and cached in Redis under the series' token as the
two endpoints' JSON bodies: valid until the session's readings change or it ends (either renews the
series' token), so a finished session's History page costs one Redis round trip however long it
was, no MongoDB query (the session is not loaded when its owner asks) and no serialisation (a
200-point time line through marshmallow cost more than computing the rest)."""
import json

from flask import current_app

from app.models.base import ref_id
from app.readings import series
from app.sessions.analytics import on_audio_clock, session_analytics, session_insights
from app.sessions.schemas import AnalyticsSchema, InsightsSchema

# A session's time line is averaged down to at most this many points.
TIMELINE_POINTS = 200

SCHEMAS = {"analytics": AnalyticsSchema(), "insights": InsightsSchema()}


def _summary(session, entries):
    """{"analytics": ..., "insights": ...} of the session from its series entries."""
    placed, audio_seconds = on_audio_clock(map(series.unpack, entries), session.started_at)
    spoken = [r for r in placed if not r["silence"]]
    analytics = session_analytics(spoken, session.started_at, session.ended_at, max_points=TIMELINE_POINTS,
                                  audio_seconds=audio_seconds)
    analytics["silent_windows"] = len(placed) - len(spoken)
    return {"analytics": analytics, "insights": session_insights(spoken)}


def _bodies(session, entries):
    """The endpoints' bodies, exactly as flask-smorest would dump and jsonify them."""
    summary = _summary(session, entries)
    return {name: current_app.json.response(schema.dump({"session_id": str(session.id), **summary[name]}))
            .get_data(as_text=True) for name, schema in SCHEMAS.items()}


def session_bodies(session_id, owner_id, load_session):
    """{"analytics": JSON text, "insights": JSON text}: the bodies of GET
    /api/sessions/<id>/analytics and /insights (AnalyticsSchema, InsightsSchema).

    Served from the cache without loading the session when they were cached for `owner_id` at the
    series' current token (ending a session renews it: app/sessions/store.py); otherwise
    `load_session()` gives the session (and says 404 when the caller may not see it), and the
    bodies are computed, then cached if neither the readings nor the session changed meanwhile:
    the token is read before the session is, and must be the same when the series is."""
    session_id = str(session_id)
    redis = current_app.extensions["redis"]
    token, cached = redis.mget(series.token_key(session_id), series.cache_key(session_id))
    if token is not None and cached is not None:
        payload = json.loads(cached)
        # An entry cached by an earlier release (no "owner") is recomputed, not served.
        if payload.get("token") == token.decode() and payload.get("owner") == str(owner_id):
            return payload["bodies"]
    session = load_session()
    _, now, bodies, current = series.load(session_id, lambda entries: _bodies(session, entries), expect=token)
    if current:
        payload = {"token": now, "owner": ref_id(session, "owner"), "bodies": bodies}
        redis.set(series.cache_key(session_id), json.dumps(payload), ex=series.SERIES_TTL_S)
    return bodies


def body_response(body):
    """A 200 answer whose JSON body is already made (flask-smorest passes a Response through)."""
    return current_app.response_class(body, mimetype=current_app.json.mimetype)
