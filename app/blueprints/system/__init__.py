from flask import Blueprint as FlaskBlueprint
from app.schemas import ApiBlueprint

bp = ApiBlueprint("system", __name__, url_prefix="/api/system", description="Health and monitoring")
docs_bp = FlaskBlueprint("docs", __name__)

from app.blueprints.system import routes  # noqa: E402,F401
