"""/api/readings: readings posted by external detectors, listings, trends and distribution."""
from datetime import UTC, datetime, timedelta

from flask_jwt_extended import current_user

from app.api import ApiBlueprint
from app.api.access import get_owned, owner_scope
from app.api.errors import ApiError, invalid_input
from app.api.pagination import page_schema, paginate
from app.environment.store import update_environment
from app.models import EmotionReading, EmotionSession
from app.models.base import utcnow
from app.readings.schemas import (
    BySessionArgsSchema,
    DistributionSchema,
    ReadingCreateSchema,
    ReadingFilterSchema,
    ReadingSchema,
    RecentArgsSchema,
    TrendArgsSchema,
    TrendsSchema,
    WindowArgsSchema,
)
from app.readings.stats import choose_bucket, distribution, trends
from app.readings.store import store_reading
from ml.inference import reading as reading_of
from ml.params import CLASSES

bp = ApiBlueprint("readings", __name__, url_prefix="/api/readings", description="Emotion readings and their analytics")

# A reading may be back-dated freely but not claim to come from the future (clock skew aside).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _window(args):
    until = datetime.now(UTC)
    return until - timedelta(hours=args["hours"]), until


def _scope(args):
    owner = owner_scope(args.get("user_id"))
    session = get_owned(EmotionSession, args["session_id"], "session_id") if args.get("session_id") else None
    return owner, session


@bp.authenticated("", methods=["POST"], caller=True)
@bp.arguments(ReadingCreateSchema)
@bp.response(201, ReadingSchema)
@bp.errors(400, 401, 404, 409, 413, 415, d404="session_id is not one of your sessions", d409="The session has ended")
def create_reading(data):
    """Post a reading from an external detector (e.g. a face model): probabilities over the 8 classes"""
    session = None
    if "session_id" in data:
        session = get_owned(EmotionSession, data["session_id"], "session_id", admin_may=False)
        if session.status != "active":
            raise ApiError(409, "The session has ended", code="session_ended", details={"field": "session_id"})
    timestamp = data.get("timestamp", utcnow())
    if timestamp > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise invalid_input("json", "timestamp", "Is in the future.")
    reading = store_reading(current_user, session, reading_of([data["probabilities"][c] for c in CLASSES]),
                            source=data["source"], timestamp=timestamp, model_version=data.get("detector"))
    update_environment(current_user, session, reading)
    return EmotionReading._from_son(reading)


@bp.authenticated("", methods=["GET"])
@bp.arguments(ReadingFilterSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401, 403, 404)
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


@bp.authenticated("/by_session", methods=["GET"])
@bp.arguments(BySessionArgsSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401, 404)
def readings_by_session(args):
    """Readings of one session, newest first"""
    session = get_owned(EmotionSession, args["session_id"], "session_id")
    return paginate(EmotionReading.objects(session=session), args["limit"], args["cursor"], "timestamp")


@bp.authenticated("/recent", methods=["GET"])
@bp.arguments(RecentArgsSchema, location="query")
@bp.response(200, page_schema(ReadingSchema))
@bp.errors(401)
def recent_readings(args):
    """The caller's readings of the last `hours` hours, newest first"""
    since, _ = _window(args)
    query = EmotionReading.objects(owner=current_user, timestamp__gte=since)
    return paginate(query, args["limit"], args["cursor"], "timestamp")


@bp.authenticated("/trends", methods=["GET"], caller=True)
@bp.arguments(TrendArgsSchema, location="query")
@bp.response(200, TrendsSchema)
@bp.errors(401, 403, 404)
def reading_trends(args):
    """Per time bucket: mean probabilities, valence, arousal, intensity and count (silence excluded)"""
    owner, session = _scope(args)
    since, until = _window(args)
    bucket = choose_bucket(owner, session, since, until) if args["bucket"] == "auto" else args["bucket"]
    return {"bucket": bucket, "since": since, "until": until, "points": trends(owner, session, since, until, bucket)}


@bp.authenticated("/distribution", methods=["GET"], caller=True)
@bp.arguments(WindowArgsSchema, location="query")
@bp.response(200, DistributionSchema)
@bp.errors(401, 403, 404)
def reading_distribution(args):
    """Share of each dominant emotion and mean intensity over the last `hours` hours (silence excluded)"""
    owner, session = _scope(args)
    since, until = _window(args)
    return {"since": since, "until": until, **distribution(owner, session, since, until)}


@bp.authenticated("/<reading_id>", methods=["GET"])
@bp.response(200, ReadingSchema)
@bp.errors(401, 404, 422)
def get_reading(reading_id):
    """One reading (its owner or an admin)"""
    return get_owned(EmotionReading, reading_id, "reading_id")
