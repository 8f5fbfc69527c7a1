from app.schemas import ApiBlueprint

bp = ApiBlueprint("collective", __name__, url_prefix="/api/collective",
                  description="The collective mood across all users (public, anonymous reads allowed)")

from app.blueprints.collective import routes  # noqa: E402,F401
