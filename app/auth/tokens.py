"""JWT callbacks: identity, user lookup, revocation list in Redis, and error answers."""
from datetime import UTC, datetime

from flask import current_app
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import ExpiredSignatureError, PyJWTError

from app.api.errors import error_body
from app.extensions import jwt
from app.models import User

REVOKED_PREFIX = "jwt:revoked:"


def _redis():
    return current_app.extensions["redis"]


def revoke(token_payload):
    """Keep the token's id in Redis until it would have expired anyway."""
    ttl = int(token_payload["exp"] - datetime.now(UTC).timestamp())
    if ttl > 0:
        _redis().set(REVOKED_PREFIX + token_payload["jti"], 1, ex=ttl)


@jwt.user_identity_loader
def _identity(user):
    return str(user.id)


@jwt.additional_claims_loader
def _claims(user):
    return {"role": user.role}


@jwt.user_lookup_loader
def _lookup(_header, payload):
    return User.objects(id=payload["sub"]).first()


@jwt.token_in_blocklist_loader
def _is_revoked(_header, payload):
    return bool(_redis().exists(REVOKED_PREFIX + payload["jti"]))


def _unauthorized(message, code="unauthorized"):
    return error_body(401, message, code=code), 401


@jwt.user_lookup_error_loader
def _user_gone(_header, _payload):
    return _unauthorized("The account for this token no longer exists", "user_not_found")


@jwt.expired_token_loader
def _expired(_header, _payload):
    return _unauthorized("Token has expired", "token_expired")


@jwt.revoked_token_loader
def _revoked(_header, _payload):
    return _unauthorized("Token has been revoked", "token_revoked")


@jwt.invalid_token_loader
def _invalid(reason):
    return _unauthorized(f"Invalid token: {reason}", "token_invalid")


@jwt.unauthorized_loader
def _missing(reason):
    return _unauthorized(f"Authentication required: {reason}", "token_missing")


@jwt.needs_fresh_token_loader
def _not_fresh(_header, _payload):
    return _unauthorized("This action needs a fresh token: sign in again", "fresh_token_required")


@jwt.token_verification_failed_loader
def _verification_failed(_header, _payload):
    return _unauthorized("Token verification failed", "token_invalid")


class TokenRejected(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def user_from_access_token(encoded):
    """The user of a valid, unrevoked access token (for Socket.IO, which has no headers)."""
    if not isinstance(encoded, str) or not encoded:
        raise TokenRejected("token_missing", "Authentication required: send {token: <access token>}")
    try:
        payload = decode_token(encoded)
    except ExpiredSignatureError:
        raise TokenRejected("token_expired", "Token has expired")
    except (JWTExtendedException, PyJWTError) as exc:
        raise TokenRejected("token_invalid", f"Invalid token: {exc}")
    if payload.get("type") != "access":
        raise TokenRejected("token_invalid", "Only access tokens are allowed")
    if _is_revoked(None, payload):
        raise TokenRejected("token_revoked", "Token has been revoked")
    user = User.objects(id=payload["sub"]).first()
    if user is None:
        raise TokenRejected("user_not_found", "The account for this token no longer exists")
    return user
