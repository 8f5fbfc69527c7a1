"""/api/environment: the environment responses stored for the caller's readings."""
from app.api import ApiBlueprint
from app.api.access import get_owned, owner_scope
from app.api.errors import ApiError
from app.api.pagination import page_schema, paginate
from app.environment.schemas import (
    EnvironmentListArgsSchema,
    EnvironmentResponseSchema,
    ForSessionArgsSchema,
    LatestArgsSchema,
)
from app.models import EmotionSession, EnvironmentResponse

bp = ApiBlueprint("environment", __name__, url_prefix="/api/environment",
                  description="Environment responses: light, sound, visuals and smart-home settings")


@bp.authenticated("", methods=["GET"])
@bp.arguments(EnvironmentListArgsSchema, location="query")
@bp.response(200, page_schema(EnvironmentResponseSchema))
@bp.errors(401, 403, 404)
def list_responses(args):
    """The caller's environment responses, newest first"""
    query = EnvironmentResponse.objects(owner=owner_scope(args.get("user_id")))
    if "session_id" in args:
        query = query.filter(session=get_owned(EmotionSession, args["session_id"], "session_id"))
    return paginate(query, args["limit"], args["cursor"], "created_at")


@bp.authenticated("/for_session", methods=["GET"])
@bp.arguments(ForSessionArgsSchema, location="query")
@bp.response(200, page_schema(EnvironmentResponseSchema))
@bp.errors(401, 404)
def for_session(args):
    """A session's environment responses, newest first"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    return paginate(EnvironmentResponse.objects(session=session), args["limit"], args["cursor"], "created_at")


@bp.authenticated("/latest_for_session", methods=["GET"])
@bp.arguments(LatestArgsSchema, location="query")
@bp.response(200, EnvironmentResponseSchema)
@bp.errors(401, 404, d404="Not one of your sessions, or it has no environment response yet")
def latest_for_session(args):
    """The response a session's environment shows now"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    latest = EnvironmentResponse.objects(session=session).order_by("-created_at", "-id").first()
    if latest is None:
        raise ApiError(404, "This session has no environment response yet", details={"field": "session_id"})
    return latest
