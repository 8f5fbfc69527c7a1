import marshmallow as ma
from flask import current_app, render_template

from app.blueprints.system import bp, docs_bp
from app.extensions import limiter
from app.health import health_report


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


@docs_bp.route("/api/docs")
def api_docs():
    """Interactive API documentation (Swagger UI, vendored)."""
    return render_template("api_docs.html")
