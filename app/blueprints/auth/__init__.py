from app.schemas import ApiBlueprint

bp = ApiBlueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")

from app.blueprints.auth import routes  # noqa: E402,F401
