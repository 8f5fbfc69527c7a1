"""A session's life cycle, shared by the REST API, the Socket.IO handlers, the admin and the
workers: its readings for analytics, ending it, and deleting it with everything filed under it."""
from app.environment.store import delete_responses
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse
from app.models.base import utcnow
from app.readings.store import delete_readings

READING_FIELDS = ("timestamp", "probabilities", "dominant", "confidence", "valence", "arousal", "intensity")


def session_readings(session):
    """The session's non-silent readings as plain dicts, oldest first (for app.sessions.analytics)."""
    query = EmotionReading.objects(session=session, silence=False).order_by("timestamp").only(*READING_FIELDS)
    return [{name: getattr(r, name) for name in READING_FIELDS} for r in query]


def end_session(session_id):
    """Mark ended once; a second call is a no-op (the stream may end twice: stop, then disconnect).
    One write and no read: a hundred streams that stop together cost a hundred writes."""
    EmotionSession.objects(id=session_id, status="active").update(set__status="ended", set__ended_at=utcnow())


def delete_session(session):
    """Delete the session; what is filed under it goes first, so a crash leaves no orphans."""
    delete_responses(EnvironmentResponse.objects(session=session))
    delete_readings(EmotionReading.objects(session=session))
    AnalysisJob.objects(session=session).delete()
    session.delete()
