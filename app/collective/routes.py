"""/api/collective: the collective mood (public: anonymous callers may read it)."""
from datetime import timedelta

from app.api import ApiBlueprint
from app.api.pagination import page_schema, paginate
from app.api.schemas import PageArgsSchema
from app.collective.formulas import collective_insights
from app.collective.schemas import CollectiveInsightsSchema, CollectiveSchema, HistorySchema, HoursArgsSchema
from app.collective.snapshot import current_snapshot
from app.models import CollectiveEmotion
from app.models.base import utcnow

bp = ApiBlueprint("collective", __name__, url_prefix="/api/collective",
                  description="The collective mood across all users (public, anonymous reads allowed)")

# At the default 10 s interval a day holds 8,640 snapshots; history returns at most this many.
MAX_HISTORY_POINTS = 2000


def _snapshots_since(hours):
    since = utcnow() - timedelta(hours=hours)
    return CollectiveEmotion.objects(created_at__gte=since).order_by("-created_at").limit(MAX_HISTORY_POINTS)


@bp.route("", methods=["GET"])
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, page_schema(CollectiveSchema))
def list_snapshots(args):
    """Collective snapshots, newest first"""
    return paginate(CollectiveEmotion.objects, args["limit"], args["cursor"], "created_at")


@bp.route("/current", methods=["GET"])
@bp.response(200, CollectiveSchema)
def current():
    """The current collective mood (computed on demand when the latest snapshot is stale)"""
    return current_snapshot()


@bp.route("/history", methods=["GET"])
@bp.arguments(HoursArgsSchema, location="query")
@bp.response(200, HistorySchema)
def history(args):
    """Snapshots of the last `hours` hours, oldest first (at most 2,000, the newest)"""
    return {"hours": args["hours"], "snapshots": list(_snapshots_since(args["hours"]))[::-1]}


@bp.route("/insights", methods=["GET"])
@bp.arguments(HoursArgsSchema, location="query")
@bp.response(200, CollectiveInsightsSchema)
def insights(args):
    """Peaks, mood swings and busiest hours over the last `hours` hours"""
    fields = ("window_end", "mean_valence", "mean_arousal", "dominant", "active_users", "hidden")
    snapshots = [{f: getattr(s, f) for f in fields} for s in _snapshots_since(args["hours"])][::-1]
    return {"hours": args["hours"], **collective_insights(snapshots)}
