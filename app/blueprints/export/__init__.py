from app.schemas import ApiBlueprint

bp = ApiBlueprint("export", __name__, url_prefix="/api/export", description="Streamed exports of readings (CSV or JSON)")

from app.blueprints.export import routes  # noqa: E402,F401
