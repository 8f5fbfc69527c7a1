"""What every REST area shares: the blueprint class with its authenticated-route helper, and
(in its modules) the error shape, strict schemas, pagination, ownership rules and HTTP policy.

Nothing here imports an area: the areas import from here.
"""
import flask_smorest
from flask_jwt_extended import jwt_required

from app.api.access import admin_required, caller_only
from app.api.errors import ErrorSchema
from app.api.schemas import SchemaDecidesParser

# The OpenAPI security requirement of every endpoint that takes a bearer token.
AUTH = [{"bearerAuth": []}]

# What each error status means on this API, for the OpenAPI document (`ApiBlueprint.errors`).
ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "No valid access token: missing, malformed, tampered with, expired, revoked, or its account is gone",
    403: "Not allowed: another user's data (admins only), an admin-only endpoint, or a wrong password",
    404: "No such object of yours (another user's ids answer 404 as well, so ids leak nothing)",
    409: "Conflicts with the current state",
    413: "The body is larger than MAX_UPLOAD_MB",
    415: "The body is not in a media type this endpoint takes",
    422: "Invalid input: a field, an id or a cursor",
    429: "Too many requests: a rate limit was reached (see Retry-After)",
}


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SchemaDecidesParser()

    def authenticated(self, rule, *, methods, admin=False, fresh=False, refresh=False, caller=False, **options):
        """`route` for an endpoint that needs a bearer token: the token is checked before
        anything else (so a bad one answers 401, never 422), and the OpenAPI document says so.
        admin=True: an admin's token (else 403); fresh=True: one from a sign-in, not a refresh;
        refresh=True: a refresh token instead of an access token; caller=True: `current_user` is
        an access.Caller (its id, and is_admin), for views that need no more of the user."""

        def decorator(func):
            func = self.doc(security=AUTH)(func)
            func = admin_required(func) if admin else jwt_required(fresh=fresh, refresh=refresh)(func)
            if caller:
                func = caller_only(func)
            return self.route(rule, methods=methods, **options)(func)

        return decorator

    def errors(self, *statuses, **descriptions):
        """Document the error answers an endpoint gives, each in the one error shape:
        `@bp.errors(401, 404)`; `descriptions` override by status, e.g. `d409="..."`."""

        def decorator(func):
            for status in reversed(statuses):
                description = descriptions.get(f"d{status}", ERROR_DESCRIPTIONS[status])
                func = self.alt_response(status, schema=ErrorSchema, description=description)(func)
            return func

        return decorator
