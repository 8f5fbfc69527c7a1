"""A session's life cycle, shared by the REST API, the Socket.IO handlers, the admin and the
workers: an upload's own session, ending it, and deleting it with everything filed under it."""
from datetime import timedelta

from mongoengine.errors import NotUniqueError

from app.environment.store import delete_responses
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse
from app.models.base import utcnow
from app.readings import series
from app.readings.store import delete_readings


def upload_session(job, duration_s):
    """The session an upload's readings are filed under: the one its owner attached it to, else
    its own (source `upload`, named after the file), active while it is analysed; it ends when the
    upload was received and lasts as long as the recording (finish_upload_session). Its id is
    the job's, so a retried job finds it again."""
    if job.session is not None:
        return job.session
    started = job.created_at - timedelta(seconds=duration_s)
    session = EmotionSession(id=job.id, owner=job.owner, name=(job.filename or "Uploaded recording")[:120],
                             source="upload", started_at=started)
    try:
        session.save(force_insert=True)
    except NotUniqueError:
        session = EmotionSession.objects.get(id=job.id)
    job.update(set__session=session)
    job.session = session
    return session


def finish_upload_session(job):
    if job.session is not None and job.session.id == job.id:
        if EmotionSession.objects(id=job.id).update(set__status="ended", set__ended_at=job.created_at):
            series.renew(str(job.id))


def discard_upload_session(job):
    """A failed upload leaves no session behind: its own session goes with what is filed under
    it (a session its owner attached it to stays). The job itself is kept, with its reason."""
    session = job.session
    if session is not None and session.id == job.id:
        job.update(unset__session=True)
        delete_session(session)


def end_session(session_id):
    """Mark ended once; a second call is a no-op (the stream may end twice: stop, then disconnect).
    One write and no read: a hundred streams that stop together cost a hundred writes (and a
    hundred Redis SETs)."""
    if EmotionSession.objects(id=session_id, status="active").update(set__status="ended", set__ended_at=utcnow()):
        series.renew(str(session_id))   # after the write: analytics cached before it are stale


def delete_session(session):
    """Delete the session; what is filed under it goes first, so a crash leaves no orphans."""
    delete_responses(EnvironmentResponse.objects(session=session))
    delete_readings(EmotionReading.objects(session=session))
    AnalysisJob.objects(session=session).delete()
    session.delete()
    series.forget([str(session.id)])
