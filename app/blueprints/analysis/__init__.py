from app.schemas import ApiBlueprint

bp = ApiBlueprint("analysis", __name__, url_prefix="/api", description="Analyse recordings")

from app.blueprints.analysis import routes  # noqa: E402,F401
