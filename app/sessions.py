"""Session life cycle shared by the REST API, Socket.IO handlers and workers."""
from app import collective
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse
from app.models.base import utcnow

READING_FIELDS = ("timestamp", "probabilities", "dominant", "confidence", "valence", "arousal", "intensity")


def session_readings(session):
    """The session's non-silent readings as plain dicts, oldest first (for app.domain.analytics)."""
    query = EmotionReading.objects(session=session, silence=False).order_by("timestamp").only(*READING_FIELDS)
    return [{name: getattr(r, name) for name in READING_FIELDS} for r in query]


def end_session(session_id):
    """Mark ended once; a second call is a no-op (the stream may end twice: stop, then disconnect).
    One write and no read: a hundred streams that stop together cost a hundred writes."""
    EmotionSession.objects(id=session_id, status="active").update(set__status="ended", set__ended_at=utcnow())


def delete_session(session):
    collective.untally(EmotionReading.objects(session=session))
    for model in (EnvironmentResponse, EmotionReading, AnalysisJob):
        model.objects(session=session).delete()
    session.delete()
