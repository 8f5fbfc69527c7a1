"""Session life cycle shared by the REST API, Socket.IO handlers and workers."""
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse
from app.models.base import utcnow

READING_FIELDS = ("timestamp", "probabilities", "dominant", "confidence", "valence", "arousal", "intensity")


def session_readings(session):
    """The session's non-silent readings as plain dicts, oldest first (for app.domain.analytics)."""
    query = EmotionReading.objects(session=session, silence=False).order_by("timestamp").only(*READING_FIELDS)
    return [{name: getattr(r, name) for name in READING_FIELDS} for r in query]


def end_session(session):
    """Mark ended once; a second call is a no-op (the stream may end twice: stop, then disconnect)."""
    EmotionSession.objects(id=session.id, status="active").update(set__status="ended", set__ended_at=utcnow())
    session.reload()
    return session


def delete_session(session):
    for model in (EnvironmentResponse, EmotionReading, AnalysisJob):
        model.objects(session=session).delete()
    session.delete()
