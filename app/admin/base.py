"""Behaviour every admin view shares: the admin-only gate and the /admin security policy."""
from urllib.parse import urlsplit

from flask import redirect, request, url_for

from app.admin.forms import LogoutForm
from app.admin.security import admin_csp, signed_in_admin
from app.api.http import SECURITY_HEADERS


def safe_next(target):
    """Only a path inside the admin may be a post-login destination (no open redirect)."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin") or parts.path.startswith("/admin/login"):
        return url_for("admin.index")
    return target


class AdminOnlyMixin:
    def create_blueprint(self, admin):
        blueprint = super().create_blueprint(admin)
        blueprint.after_request(_set_admin_policy)
        return blueprint

    def is_accessible(self):
        return signed_in_admin() is not None

    def render(self, template, **kwargs):
        # Every admin page shows who is signed in, with a sign-out button (a CSRF-protected POST).
        return super().render(template, admin_user=signed_in_admin(), logout_form=LogoutForm(), **kwargs)

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))


def _set_admin_policy(response):
    # Blueprint hooks run before the app's, and the app only sets headers not yet set.
    response.headers["Content-Security-Policy"] = admin_csp(SECURITY_HEADERS["Content-Security-Policy"])
    return response
