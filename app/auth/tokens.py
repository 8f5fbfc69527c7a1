"""JWT callbacks: identity, user lookup, revocation (of one token: a list in Redis; of all of a
user's tokens: the user's token version), and error answers."""
from datetime import UTC, datetime

from bson import ObjectId
from flask import current_app, g
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTDecodeError, JWTExtendedException
from jwt.exceptions import ExpiredSignatureError, PyJWTError

from app.api.access import Caller
from app.api.errors import error_body
from app.extensions import jwt
from app.models import User

REVOKED_PREFIX = "jwt:revoked:"
# A deleted account, for as long as one of its access tokens may still be in use: live streams
# (app/live) and the workers' drain stop at it, without a MongoDB lookup.
GONE_PREFIX = "auth:gone:"
# The user's token version, cached: every request checks it, MongoDB only on a cache miss.
VERSION_PREFIX = "jwt:version:"


def _redis():
    return current_app.extensions["redis"]


def revoke(token_payload):
    """Keep the token's id in Redis until it would have expired anyway."""
    ttl = int(token_payload["exp"] - datetime.now(UTC).timestamp())
    if ttl > 0:
        _redis().set(REVOKED_PREFIX + token_payload["jti"], 1, ex=ttl)


def _version_ttl():
    # No token lives longer than a refresh token: after that, the cache is not needed.
    return int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())


def token_version(user_id, cached=None):
    """The user's current token version (`cached`: the Redis value, when already read): tokens
    that carry a lower one are revoked."""
    key = VERSION_PREFIX + user_id
    if cached is None:
        cached = _redis().get(key)
    if cached is not None:
        return int(cached)
    user = User.objects(id=user_id).only("token_version").first()
    version = user.token_version if user else 0
    # NX: a revoke_all that ran since this read has already cached its newer version.
    _redis().set(key, version, ex=_version_ttl(), nx=True)
    return version


def revoke_all(user):
    """Revoke every token of the user issued so far; tokens created after this call are valid."""
    User.objects(id=user.id).update_one(inc__token_version=1)
    user.reload("token_version")
    _redis().set(VERSION_PREFIX + str(user.id), user.token_version, ex=_version_ttl())


@jwt.user_identity_loader
def _identity(user):
    return str(user.id)


@jwt.additional_claims_loader
def _claims(user):
    return {"role": user.role, "ver": user.token_version}


def _user(payload):
    """The token's user; None for a subject that is not one of our ids (a token signed with our
    key never carries one, but a 500 must not be the answer if one did)."""
    subject = payload.get("sub")
    if not isinstance(subject, str) or not ObjectId.is_valid(subject):
        return None
    return User.objects(id=subject).first()


@jwt.user_lookup_loader
def _lookup(_header, payload):
    if g.get("caller_only") and payload.get("type") == "access" and "account_gone" in g:
        # _is_revoked, which ran first, read whether the account is deleted: it is marked gone for
        # as long as an access token of it can live.
        return None if g.account_gone else Caller(payload["sub"])
    return _user(payload)


def require_claims(payload):
    """Every token we issue expires and has an id. PyJWT checks `exp` only when present, and
    flask-jwt-extended requires neither: a token without them (signed with a leaked or test key)
    would never expire and could not be revoked."""
    exp = payload.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise JWTDecodeError("Missing claim: exp")
    if not isinstance(payload.get("jti"), str) or not payload["jti"]:
        raise JWTDecodeError("Missing claim: jti")


@jwt.token_in_blocklist_loader
def _is_revoked(_header, payload):
    # The first check flask-jwt-extended makes after decoding, on every request and Socket.IO
    # connect, so the one place to refuse tokens without the claims it relies on.
    require_claims(payload)
    subject = payload.get("sub")
    if not isinstance(subject, str) or not ObjectId.is_valid(subject):
        # No such user: the user lookup refuses it (user_not_found).
        return bool(_redis().exists(REVOKED_PREFIX + payload["jti"]))
    # One round trip for the checks: this runs on every authenticated request. Whether the account
    # is gone is kept for the user lookup that follows (_lookup), which may then need no MongoDB.
    revoked, version, gone = _redis().pipeline(transaction=False).exists(REVOKED_PREFIX + payload["jti"]).get(
        VERSION_PREFIX + subject).exists(GONE_PREFIX + subject).execute()
    g.account_gone = bool(gone)
    return bool(revoked) or payload.get("ver", 0) < token_version(subject, version)


def revoked_key(payload):
    return REVOKED_PREFIX + payload["jti"]


def version_key(user_id):
    return VERSION_PREFIX + str(user_id)


def gone_key(user_id):
    return GONE_PREFIX + str(user_id)


def mark_account_gone(user_id):
    """Say that the account is deleted, for as long as any access token of it can live."""
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
    _redis().set(gone_key(user_id), 1, ex=int(lifetime) + 60)


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
    """The user of a valid, unrevoked access token (for Socket.IO, which has no headers), and
    the token's claims (its `jti` and `exp` are checked again while a live stream goes on)."""
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
    try:
        revoked = _is_revoked(None, payload)
    except JWTDecodeError as exc:
        raise TokenRejected("token_invalid", f"Invalid token: {exc}")
    if revoked:
        raise TokenRejected("token_revoked", "Token has been revoked")
    user = _user(payload)
    if user is None:
        raise TokenRejected("user_not_found", "The account for this token no longer exists")
    return user, payload
