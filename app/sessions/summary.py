"""A session's analytics and insights (app/sessions/analytics.py), computed from its series
(app/readings/series.py) on the audio clock, and cached in Redis under the series' token: valid
until the session's readings change (or its start or end does), so a finished session's History
page costs one Redis round trip however long it was."""
import json
from datetime import datetime

from flask import current_app

from app.readings import series
from app.sessions.analytics import on_audio_clock, session_analytics, session_insights

# A session's time line is averaged down to at most this many points.
TIMELINE_POINTS = 200


def _encode(value):
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot cache {type(value).__name__}")


def _decode(mapping):
    return datetime.fromisoformat(mapping["$dt"]) if mapping.keys() == {"$dt"} else mapping


def _compute(session, entries):
    placed, audio_seconds = on_audio_clock(map(series.unpack, entries), session.started_at)
    spoken = [r for r in placed if not r["silence"]]
    analytics = session_analytics(spoken, session.started_at, session.ended_at, max_points=TIMELINE_POINTS,
                                  audio_seconds=audio_seconds)
    analytics["silent_windows"] = len(placed) - len(spoken)
    return {"analytics": analytics, "insights": session_insights(spoken)}


def session_summary(session):
    """{"analytics": ..., "insights": ...} of the session."""
    session_id = str(session.id)
    redis = current_app.extensions["redis"]
    stamp = f"{session.started_at}|{session.ended_at}"
    token, cached = redis.mget(series.token_key(session_id), series.cache_key(session_id))
    if token is not None and cached is not None:
        payload = json.loads(cached, object_hook=_decode)
        if payload["token"] == token.decode() and payload["stamp"] == stamp:
            return payload["summary"]
    _, token, summary, current = series.load(session_id, lambda entries: _compute(session, entries))
    if current:
        payload = {"token": token, "stamp": stamp, "summary": summary}
        redis.set(series.cache_key(session_id), json.dumps(payload, default=_encode), ex=series.SERIES_TTL_S)
    return summary
