"""/api/system: health (public) and stats (admins); /api/docs, the interactive API docs."""
import marshmallow as ma
from flask import Blueprint, current_app, render_template

from app.api import ApiBlueprint
from app.extensions import limiter
from app.system.health import health_report
from app.system.stats import system_stats

bp = ApiBlueprint("system", __name__, url_prefix="/api/system", description="Health and monitoring")
docs_bp = Blueprint("docs", __name__)


class ComponentSchema(ma.Schema):
    status = ma.fields.String()
    count = ma.fields.Integer(allow_none=True)
    error = ma.fields.String()


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok, or unavailable when a part is down"})
    down = ma.fields.List(ma.fields.String())
    components = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ComponentSchema))


@bp.route("/health", methods=["GET"])
@limiter.exempt
@bp.response(200, HealthSchema)
@bp.alt_response(503, schema=HealthSchema, description="A part is down; `down` names it")
def health():
    """Health of MongoDB, Redis and the analysis workers (public)"""
    report = health_report(current_app.extensions["redis"])
    return report, 200 if report["status"] == "ok" else 503


class StatsSchema(ma.Schema):
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    readings_per_minute = ma.fields.Float(metadata={"description": "Mean over the last 10 minutes"})
    queues = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                            metadata={"description": "Queue depths"})
    workers = ma.fields.List(ma.fields.Dict())
    window_latency_ms = ma.fields.Dict(metadata={"description": "p50/p90/p99 over the latest 1,000 windows"})
    model_version = ma.fields.String(allow_none=True)
    uptime_seconds = ma.fields.Float()


@bp.authenticated("/stats", methods=["GET"], admin=True)
@bp.response(200, StatsSchema)
@bp.errors(401, 403)
def stats():
    """Counts, readings per minute, queue depth, workers, latency percentiles, model version, uptime (admins)"""
    return system_stats(current_app.extensions["redis"])


@docs_bp.route("/api/docs")
def api_docs():
    """Interactive API documentation (Swagger UI, vendored)."""
    return render_template("api_docs.html")
