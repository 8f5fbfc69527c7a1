"""Who may use the admin pages, and the Content-Security-Policy they are served with."""
import base64
import functools
import hashlib
import secrets

from bson import ObjectId
from flask import current_app, g, session

from app.models import User
from app.models.base import utcnow

# The signed cookie names a sign-in kept in Redis, which sign-out deletes: a captured cookie is
# worthless once its admin has signed out, and after ADMIN_SESSION_SECONDS whatever happens.
SESSION_ID = "admin_session"
SESSION_STAMP = "admin_stamp"
REDIS_PREFIX = "admin:session:"

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


def _redis():
    return current_app.extensions["redis"]


def sign_in(user):
    session.clear()  # a fresh session on sign-in: no fixation of a pre-login session
    session_id = secrets.token_urlsafe(32)
    _redis().set(REDIS_PREFIX + session_id, str(user.id), ex=current_app.config["ADMIN_SESSION_SECONDS"])
    session[SESSION_ID] = session_id
    session[SESSION_STAMP] = _stamp(user)
    session.permanent = True  # the cookie expires with the sign-in (PERMANENT_SESSION_LIFETIME)
    g.pop("admin_user", None)
    user.update(set__last_login_at=utcnow())


def sign_out():
    session_id = session.get(SESSION_ID)
    if isinstance(session_id, str):
        _redis().delete(REDIS_PREFIX + session_id)
    session.clear()
    g.pop("admin_user", None)


def signed_in_admin():
    """The signed-in admin: the cookie's sign-in must still be in Redis (not signed out, not
    expired), and the account is re-read on every request so a demotion, deletion or password
    change takes effect at once."""
    if "admin_user" not in g:
        session_id = session.get(SESSION_ID)
        user_id = _redis().get(REDIS_PREFIX + session_id) if isinstance(session_id, str) else None
        user_id = user_id.decode() if user_id else None
        user = User.objects(id=user_id).first() if user_id and ObjectId.is_valid(user_id) else None
        current = user is not None and user.is_admin and session.get(SESSION_STAMP) == _stamp(user)
        g.admin_user = user if current else None
    return g.admin_user
