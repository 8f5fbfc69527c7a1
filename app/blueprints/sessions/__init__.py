from app.schemas import ApiBlueprint

bp = ApiBlueprint("sessions", __name__, url_prefix="/api/sessions", description="Emotion sessions, analytics and insights")

from app.blueprints.sessions import routes  # noqa: E402,F401
