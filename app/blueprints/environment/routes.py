import marshmallow as ma
from flask_jwt_extended import jwt_required

from app.access import get_owned, owner_scope
from app.blueprints.environment import bp
from app.errors import ApiError
from app.models import EmotionSession, EnvironmentResponse
from app.pagination import page_schema, paginate
from app.schemas import PageArgsSchema, StrictSchema
from app.serializers import EnvironmentResponseSchema

AUTH = [{"bearerAuth": []}]


class EnvironmentListArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class ForSessionArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(required=True, validate=ma.validate.Length(equal=24))


class LatestArgsSchema(StrictSchema):
    session_id = ma.fields.String(required=True, validate=ma.validate.Length(equal=24))


@bp.route("", methods=["GET"])
@jwt_required()
@bp.arguments(EnvironmentListArgsSchema, location="query")
@bp.response(200, page_schema(EnvironmentResponseSchema))
@bp.errors(401, 403, 404)
@bp.doc(security=AUTH)
def list_responses(args):
    """The caller's environment responses, newest first"""
    query = EnvironmentResponse.objects(owner=owner_scope(args.get("user_id")))
    if "session_id" in args:
        query = query.filter(session=get_owned(EmotionSession, args["session_id"], "session_id"))
    return paginate(query, args["limit"], args["cursor"], "created_at")


@bp.route("/for_session", methods=["GET"])
@jwt_required()
@bp.arguments(ForSessionArgsSchema, location="query")
@bp.response(200, page_schema(EnvironmentResponseSchema))
@bp.errors(401, 404)
@bp.doc(security=AUTH)
def for_session(args):
    """A session's environment responses, newest first"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    return paginate(EnvironmentResponse.objects(session=session), args["limit"], args["cursor"], "created_at")


@bp.route("/latest_for_session", methods=["GET"])
@jwt_required()
@bp.arguments(LatestArgsSchema, location="query")
@bp.response(200, EnvironmentResponseSchema)
@bp.errors(401, 404, d404="Not one of your sessions, or it has no environment response yet")
@bp.doc(security=AUTH)
def latest_for_session(args):
    """The response a session's environment shows now"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    latest = EnvironmentResponse.objects(session=session).order_by("-created_at", "-id").first()
    if latest is None:
        raise ApiError(404, "This session has no environment response yet", details={"field": "session_id"})
    return latest
