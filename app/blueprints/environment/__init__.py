from app.schemas import ApiBlueprint

bp = ApiBlueprint("environment", __name__, url_prefix="/api/environment",
                  description="Environment responses: light, sound, visuals and smart-home settings")

from app.blueprints.environment import routes  # noqa: E402,F401
