"""Who may use the admin pages, and the Content-Security-Policy they are served with."""
import base64
import functools
import hashlib

from flask import g, session

from app.models import User
from app.models.base import utcnow

SESSION_USER = "admin_user_id"
SESSION_STAMP = "admin_stamp"

# Flask-Admin's list pages carry a few inline event handlers (the delete confirmation, the bulk
# actions menu, the filter menu). The site-wide policy forbids inline script, which would let a
# delete go through unconfirmed; on /admin only, these exact handlers are allowed by hash.
ADMIN_INLINE_HANDLERS = (
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return modelActions.execute('delete');",
    "return false;",
)


def _csp_hash(source):
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@functools.cache
def admin_csp(site_policy):
    hashes = " ".join(_csp_hash(source) for source in ADMIN_INLINE_HANDLERS)
    return f"{site_policy}; script-src 'self' 'unsafe-hashes' {hashes}"


def _stamp(user):
    # Changes with the password, so a password change signs every admin session out.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def sign_in(user):
    session.clear()  # a fresh session on sign-in: no fixation of a pre-login session
    session[SESSION_USER] = str(user.id)
    session[SESSION_STAMP] = _stamp(user)
    g.pop("admin_user", None)
    user.update(set__last_login_at=utcnow())


def sign_out():
    session.clear()
    g.pop("admin_user", None)


def signed_in_admin():
    """The signed-in admin, re-read on every request so a demotion or deletion takes effect at once."""
    if "admin_user" not in g:
        user_id = session.get(SESSION_USER)
        user = User.objects(id=user_id).first() if user_id else None
        current = user is not None and user.is_admin and session.get(SESSION_STAMP) == _stamp(user)
        g.admin_user = user if current else None
    return g.admin_user
