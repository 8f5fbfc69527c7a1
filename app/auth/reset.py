"""Password reset links: signed, expiring after PASSWORD_RESET_SECONDS (30 minutes), and single
use. The signed token carries the user's id and token version; a reset raises the version (as a
password change and "sign out everywhere" do), so a used link, and every other link issued
before it, stops working."""
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.models import User

SALT = "password-reset"


class ResetLinkInvalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def reset_token(user):
    return _serializer().dumps({"uid": str(user.id), "ver": user.token_version})


def user_for_reset(token):
    """The user a valid, unused, unexpired reset token is for; ResetLinkInvalid otherwise."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_SECONDS"])
    except SignatureExpired:
        raise ResetLinkInvalid("reset_link_expired", "This reset link has expired: ask for a new one")
    except BadSignature:
        raise ResetLinkInvalid("reset_link_invalid", "This reset link is not valid: ask for a new one")
    user = User.objects(id=data.get("uid")).first() if isinstance(data, dict) else None
    if user is None or data.get("ver") != user.token_version:
        raise ResetLinkInvalid("reset_link_used", "This reset link has been used or replaced: ask for a new one")
    return user
