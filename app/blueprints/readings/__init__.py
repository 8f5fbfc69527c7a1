from app.schemas import ApiBlueprint

bp = ApiBlueprint("readings", __name__, url_prefix="/api/readings", description="Emotion readings and their analytics")

from app.blueprints.readings import routes  # noqa: E402,F401
