"""The admin interface at /admin: Flask-Admin's MongoEngine views of every model, for admins.

Browsers do not send the API's bearer tokens when they navigate, so the admin signs in with its
own form (app.admin.auth) into Flask's signed session cookie.
"""
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from app.admin.auth import AdminHomeView
from app.admin.views import model_views

URL = "/admin"


def init_admin(app):
    """A fresh Admin per app: Flask-Admin views keep their blueprint, so they cannot be shared."""
    admin = Admin(name="Mood Mirror admin", url=URL, index_view=AdminHomeView(url=URL),
                  theme=Bootstrap4Theme(base_template="admin/mood_base.html"))
    for view in model_views(URL):
        admin.add_view(view)
    admin.init_app(app)
    return admin
