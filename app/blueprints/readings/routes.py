from datetime import UTC, datetime, timedelta

from flask_jwt_extended import current_user, jwt_required

from app.access import get_owned, owner_scope
from app.blueprints.readings import bp
from app.blueprints.readings.schemas import (
    BySessionArgsSchema,
    DistributionSchema,
    ReadingCreateSchema,
    ReadingFilterSchema,
    RecentArgsSchema,
    TrendArgsSchema,
    TrendsSchema,
    WindowArgsSchema,
)
from app.emotion_store import describe_probabilities, record_reading, update_environment
from app.errors import ApiError
from app.models import EmotionReading, EmotionSession
from app.models.base import utcnow
from app.pagination import page_schema, paginate
from app.readings_stats import distribution, trends
from app.serializers import ReadingSchema

AUTH = [{"bearerAuth": []}]
# A reading may be back-dated freely but not claim to come from the future (clock skew aside).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _window(args):
    until = datetime.now(UTC)
    return until - timedelta(hours=args["hours"]), until


def _scope(args):
    owner = owner_scope(args.get("user_id"))
    session = get_owned(EmotionSession, args["session_id"], "session_id") if args.get("session_id") else None
    return owner, session


@bp.route("", methods=["POST"])
@jwt_required()
@bp.arguments(ReadingCreateSchema)
@bp.response(201, ReadingSchema)
@bp.errors(400, 401, 404, 409, 413, 415, d404="session_id is not one of your sessions", d409="The session has ended")
@bp.doc(security=AUTH)
def create_reading(data):
    """Post a reading from an external detector (e.g. a face model): probabilities over the 8 classes"""
    session = None
    if "session_id" in data:
        session = get_owned(EmotionSession, data["session_id"], "session_id", admin_may=False)
        if session.status != "active":
            raise ApiError(409, "The session has ended", code="session_ended", details={"field": "session_id"})
    timestamp = data.get("timestamp", utcnow())
    if timestamp > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ApiError(422, "Invalid input: timestamp", details={"fields": {"json": {"timestamp": ["Is in the future."]}}})
    reading = record_reading(current_user, session, describe_probabilities(data["probabilities"]), source=data["source"],
                                timestamp=timestamp, model_version=data.get("detector"))
    update_environment(current_user, session, reading)
    return reading


@bp.route("", methods=["GET"])
@jwt_required()
@bp.arguments(ReadingFilterSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401, 403, 404)
@bp.doc(security=AUTH)
def list_readings(args):
    """The caller's readings, newest first; filter by session, time range, dominant emotion, source"""
    owner, session = _scope(args)
    query = EmotionReading.objects(owner=owner)
    if session is not None:
        query = query.filter(session=session)
    for field, lookup in (("since", "timestamp__gte"), ("until", "timestamp__lt"), ("dominant", "dominant"),
                          ("source", "source")):
        if field in args:
            query = query.filter(**{lookup: args[field]})
    return paginate(query, args["limit"], args["cursor"], "timestamp")


@bp.route("/by_session", methods=["GET"])
@jwt_required()
@bp.arguments(BySessionArgsSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401, 404)
@bp.doc(security=AUTH)
def readings_by_session(args):
    """Readings of one session, newest first"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    return paginate(EmotionReading.objects(session=session), args["limit"], args["cursor"], "timestamp")


@bp.route("/recent", methods=["GET"])
@jwt_required()
@bp.arguments(RecentArgsSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401)
@bp.doc(security=AUTH)
def recent_readings(args):
    """The caller's readings of the last `hours` hours, newest first"""
    since, _ = _window(args)
    query = EmotionReading.objects(owner=current_user, timestamp__gte=since)
    return paginate(query, args["limit"], args["cursor"], "timestamp")


@bp.route("/trends", methods=["GET"])
@jwt_required()
@bp.arguments(TrendArgsSchema, location="query")
@bp.response(200, TrendsSchema)
@bp.errors(401, 403, 404)
@bp.doc(security=AUTH)
def reading_trends(args):
    """Per time bucket: mean probabilities, valence, arousal, intensity and count (silence excluded)"""
    owner, session = _scope(args)
    since, until = _window(args)
    return {"bucket": args["bucket"], "since": since, "until": until,
            "points": trends(owner, session, since, until, args["bucket"])}


@bp.route("/distribution", methods=["GET"])
@jwt_required()
@bp.arguments(WindowArgsSchema, location="query")
@bp.response(200, DistributionSchema)
@bp.errors(401, 403, 404)
@bp.doc(security=AUTH)
def reading_distribution(args):
    """Share of each dominant emotion and mean intensity over the last `hours` hours (silence excluded)"""
    owner, session = _scope(args)
    since, until = _window(args)
    return {"since": since, "until": until, **distribution(owner, session, since, until)}


@bp.route("/<reading_id>", methods=["GET"])
@jwt_required()
@bp.response(200, ReadingSchema)
@bp.errors(401, 404, 422)
@bp.doc(security=AUTH)
def get_reading(reading_id):
    """One reading (its owner or an admin)"""
    return get_owned(EmotionReading, reading_id, "reading_id")
