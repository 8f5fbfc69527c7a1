"""/api/sessions: sessions, their analytics and insights."""
from flask_jwt_extended import current_user

from app.api import ApiBlueprint
from app.api.access import get_owned, owner_scope
from app.api.pagination import page_schema, paginate
from app.models import EmotionSession
from app.sessions.schemas import (
    AnalyticsSchema,
    InsightsSchema,
    SessionCreateSchema,
    SessionListArgsSchema,
    SessionSchema,
)
from app.sessions.store import delete_session, end_session
from app.sessions.summary import body_response, session_bodies

bp = ApiBlueprint("sessions", __name__, url_prefix="/api/sessions",
                  description="Emotion sessions, analytics and insights")


@bp.authenticated("", methods=["GET"])
@bp.arguments(SessionListArgsSchema, location="query")
@bp.response(200, page_schema(SessionSchema))
@bp.errors(401, 403, 404)
def list_sessions(args):
    """The caller's sessions, newest first"""
    query = EmotionSession.objects(owner=owner_scope(args.get("user_id")))
    if "status" in args:
        query = query.filter(status=args["status"])
    return paginate(query, args["limit"], args["cursor"], "started_at")


@bp.authenticated("", methods=["POST"])
@bp.arguments(SessionCreateSchema)
@bp.response(201, SessionSchema)
@bp.errors(400, 401, 413, 415)
def create_session(data):
    """Start a session (live streams start theirs over Socket.IO)"""
    return EmotionSession(owner=current_user, **data).save()


@bp.authenticated("/active", methods=["GET"])
@bp.arguments(SessionListArgsSchema, location="query")
@bp.response(200, page_schema(SessionSchema))
@bp.errors(401, 403, 404)
def active_sessions(args):
    """The caller's active sessions (an admin: everyone's, or one user's with user_id)"""
    query = EmotionSession.objects(status="active")
    if not current_user.is_admin or "user_id" in args:
        query = query.filter(owner=owner_scope(args.get("user_id")))
    return paginate(query, args["limit"], args["cursor"], "started_at")


@bp.authenticated("/<session_id>", methods=["GET"])
@bp.response(200, SessionSchema)
@bp.errors(401, 404, 422)
def get_session(session_id):
    """One session"""
    return get_owned(EmotionSession, session_id, "session_id")


@bp.authenticated("/<session_id>", methods=["DELETE"])
@bp.response(204)
@bp.errors(401, 404, 422)
def remove_session(session_id):
    """Delete a session with its readings and environment responses"""
    delete_session(get_owned(EmotionSession, session_id, "session_id"))


@bp.authenticated("/<session_id>/end", methods=["POST"])
@bp.response(200, SessionSchema)
@bp.errors(401, 404, 422)
def end(session_id):
    """End a session (ending an ended session changes nothing)"""
    session = get_owned(EmotionSession, session_id, "session_id")
    end_session(session.id)
    session.reload()
    return session


def _callers_bodies(session_id):
    """The session's analytics and insights bodies: from the cache when the caller owns it, else
    after get_owned (an admin may read anyone's; 404 for others)."""
    return session_bodies(session_id, current_user.id, lambda: get_owned(EmotionSession, session_id, "session_id"))


@bp.authenticated("/<session_id>/analytics", methods=["GET"], caller=True)
@bp.response(200, AnalyticsSchema)
@bp.errors(401, 404, 422)
def analytics(session_id):
    """Duration, reading count, distribution, mean and peak valence and arousal, dominant emotion, time line"""
    return body_response(_callers_bodies(session_id)["analytics"])


@bp.authenticated("/<session_id>/insights", methods=["GET"], caller=True)
@bp.response(200, InsightsSchema)
@bp.errors(401, 404, 422)
def insights(session_id):
    """Volatility, progression, peaks and lows, stability, transitions and a plain-language summary"""
    return body_response(_callers_bodies(session_id)["insights"])
