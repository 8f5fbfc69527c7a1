"""/api/auth: registration, sign-in, tokens and the signed-in account."""
from flask import current_app, request
from flask_jwt_extended import create_access_token, create_refresh_token, current_user, decode_token, get_jwt
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from app.api import ApiBlueprint
from app.api.errors import ApiError, invalid_input
from app.auth import voice
from app.auth.accounts import authenticate, delete_account, hash_password
from app.auth.guard import SignInGuard
from app.auth.mail import enqueue_mail
from app.auth.reset import ResetLinkInvalid, reset_token, user_for_reset
from app.auth.schemas import (
    AccessTokenSchema,
    LoginSchema,
    LogoutSchema,
    MessageSchema,
    PasswordResetRequestSchema,
    PasswordResetSchema,
    ProfileSchema,
    ProfileUpdateSchema,
    RegisterSchema,
    TokensSchema,
)
from app.auth.tokens import require_claims, revoke, revoke_all
from app.extensions import bcrypt, limiter
from app.models import User
from app.models.base import utcnow

bp = ApiBlueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")


def _account_key():
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return "account:" + (User.normalize_email(email) if isinstance(email, str) else "-")


# One budget per address, shared by every sign-in and registration attempt (the admin's too).
# Registration also has one per account (email); sign-in failures per account are the
# SignInGuard's (app/auth/guard.py), which a guesser cannot turn against the owner.
address_limited = limiter.shared_limit(lambda: current_app.config["RATELIMIT_AUTH_IP"], scope="auth-ip")
account_limited = limiter.shared_limit(lambda: current_app.config["RATELIMIT_AUTH_ACCOUNT"], scope="auth-account",
                                       key_func=_account_key)


# Registration answers 409 for a taken email (docs/SECURITY.md, "Account enumeration"): an
# address that is told so too often in an hour may not register for the rest of it.
taken_emails_limited = limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER_TAKEN"], scope="register-taken",
                                     deduct_when=lambda response: response.status_code == 409)


def too_many_failures(retry_after):
    return ApiError(429, "Too many failed sign-ins to this account from this address. "
                         f"Try again in {retry_after} second{'s' if retry_after != 1 else ''}",
                    code="rate_limited", details={"retry_after": retry_after},
                    headers={"Retry-After": str(retry_after)})


def _token_pair(user):
    return {
        "access_token": create_access_token(identity=user, fresh=True),
        "refresh_token": create_refresh_token(identity=user),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "user": user,
    }


@bp.route("/register", methods=["POST"])
@address_limited
@account_limited
@taken_emails_limited
@bp.arguments(RegisterSchema)
@bp.response(201, TokensSchema)
@bp.errors(400, 409, 413, 415, 429, d409="Email already registered", d429="Too many attempts")
def register(data):
    """Create an account and sign in"""
    email = User.normalize_email(data["email"])
    if data["password"].lower() == email:
        raise invalid_input("json", "password", "Must not be the email.")
    if User.objects(email=email).first():
        raise ApiError(409, "This email is already registered", code="email_taken", details={"field": "email"})
    user = User(email=email, password_hash=hash_password(data["password"]),
                display_name=data.get("display_name") or email.split("@")[0][:80])
    user.last_login_at = utcnow()
    user.save()
    return _token_pair(user)


@bp.route("/login", methods=["POST"])
@address_limited
@bp.arguments(LoginSchema)
@bp.response(200, TokensSchema)
@bp.errors(400, 401, 413, 415, 429, d401="Invalid email or password", d429="Too many attempts")
def login(data):
    """Sign in with email and password"""
    guard = SignInGuard(data["email"])
    if wait := guard.retry_after():
        raise too_many_failures(wait)
    user = authenticate(data["email"], data["password"])
    if user is None:
        guard.failed()
        raise ApiError(401, "Invalid email or password", code="invalid_credentials")
    user.update(set__last_login_at=utcnow())
    user.reload()
    return _token_pair(user)


@bp.authenticated("/refresh", methods=["POST"], refresh=True)
@bp.response(200, AccessTokenSchema)
@bp.errors(401, d401="No valid refresh token")
def refresh():
    """Exchange a refresh token (in the Authorization header) for a new access token"""
    return {
        "access_token": create_access_token(identity=current_user, fresh=False),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


@bp.authenticated("/logout", methods=["POST"])
@bp.arguments(LogoutSchema, required=False)
@bp.response(204)
@bp.errors(400, 401, 413, 415)
def logout(data):
    """Revoke the access token, and the refresh token when it is given"""
    encoded = (data or {}).get("refresh_token")
    refresh_payload = None
    if encoded:
        try:
            refresh_payload = decode_token(encoded, allow_expired=True)
            require_claims(refresh_payload)
        except (JWTExtendedException, PyJWTError) as exc:
            raise invalid_input("json", "refresh_token", str(exc))
        if refresh_payload.get("type") != "refresh" or refresh_payload.get("sub") != str(current_user.id):
            raise invalid_input("json", "refresh_token", "Not a refresh token of this account.")
    revoke(get_jwt())
    if refresh_payload:
        revoke(refresh_payload)


@bp.authenticated("/logout-all", methods=["POST"])
@bp.response(204)
@bp.errors(401)
def logout_all():
    """Sign out everywhere: revoke every access and refresh token of the account, this one too"""
    revoke_all(current_user)


RESET_ANSWER = ("If an account uses this address, an e-mail with a link to choose a new password is on its way. "
                "The link works once, for {minutes} minutes.")


@bp.route("/password-reset", methods=["POST"])
@address_limited
@account_limited
@bp.arguments(PasswordResetRequestSchema)
@bp.response(202, MessageSchema)
@bp.errors(400, 413, 415, 429, d429="Too many attempts")
def request_password_reset(data):
    """E-mail a password reset link; the answer is the same whether or not the address has an account"""
    user = User.objects(email=User.normalize_email(data["email"])).first()
    minutes = current_app.config["PASSWORD_RESET_SECONDS"] // 60
    if user is not None:
        base = current_app.config["PUBLIC_BASE_URL"] or request.url_root
        link = f"{base.rstrip('/')}/reset-password#token={reset_token(user)}"
        enqueue_mail(user.email, "Reset your Mood Mirror password", (
            f"Hello {user.display_name},\n\nsomeone, probably you, asked to reset the password of your Mood Mirror "
            f"account. To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n"
            "The link works once. Choosing a new password signs you out everywhere. If you did not ask for "
            "this, ignore this e-mail: your password stays as it is.\n"))
    return {"message": RESET_ANSWER.format(minutes=minutes)}


@bp.route("/password-reset/confirm", methods=["POST"])
@address_limited
@bp.arguments(PasswordResetSchema)
@bp.response(204)
@bp.errors(400, 413, 415, 429, d400="The link is invalid, expired or already used")
def confirm_password_reset(data):
    """Set a new password with the token of a reset link; signs the account out everywhere"""
    try:
        user = user_for_reset(data["token"])
    except ResetLinkInvalid as error:
        raise ApiError(400, error.message, code=error.code, details={"field": "token"})
    if data["new_password"].lower() == user.email:
        raise invalid_input("json", "new_password", "Must not be the email.")
    user.update(set__password_hash=hash_password(data["new_password"]))
    revoke_all(user)


@bp.authenticated("/profile", methods=["GET"])
@bp.response(200, ProfileSchema)
@bp.errors(401)
def get_profile():
    """The signed-in account, its settings and whether a voice baseline exists"""
    return current_user


@bp.authenticated("/profile", methods=["PUT"])
@bp.arguments(ProfileUpdateSchema)
@bp.response(200, ProfileSchema)
@bp.errors(400, 401, 403, 413, 415, d403="The current password is wrong")
def update_profile(data):
    """Change the display name, adaptation to your voice, or the password (needs the current password;
    revokes every token of the account and answers with a new pair for the caller)"""
    user = current_user
    password_changed = "new_password" in data
    if password_changed:
        if not bcrypt.check_password_hash(user.password_hash, data["current_password"]):
            raise ApiError(403, "The current password is wrong", code="wrong_password",
                           details={"field": "current_password"})
        user.password_hash = hash_password(data["new_password"])
    if "display_name" in data:
        user.display_name = data["display_name"]
    switched = "adapt_voice" in data and data["adapt_voice"] != user.adapt_voice
    if switched:
        user.adapt_voice = data["adapt_voice"]
    user.save()
    # After the save: a worker that reloads the user meanwhile must see the new setting.
    if switched:
        voice.set_adaptation(user, user.adapt_voice)
    if password_changed:
        revoke_all(user)
        user.access_token = create_access_token(identity=user, fresh=True)
        user.refresh_token = create_refresh_token(identity=user)
    return user


@bp.authenticated("/profile/voice-baseline", methods=["DELETE"])
@bp.response(204)
@bp.errors(401)
def reset_voice_baseline():
    """Forget your voice baseline; the model learns your voice again from your next speech"""
    voice.reset(current_user)


@bp.authenticated("/profile", methods=["DELETE"], fresh=True)
@bp.response(204)
@bp.errors(401, d401="No valid access token, or not a fresh one (sign in again)")
def delete_profile():
    """Delete the account and all its data (needs a fresh token from a recent sign-in)"""
    delete_account(current_user)
    revoke(get_jwt())
