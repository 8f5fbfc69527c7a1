"""Shared marshmallow pieces: strict base schema, pagination arguments."""
import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser


class StrictSchema(ma.Schema):
    """Unknown fields are an error, so a typo or an injected key never passes silently."""

    class Meta:
        unknown = ma.RAISE


class PageArgsSchema(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


class _SchemaDecidesParser(FlaskParser):
    """Let each schema's Meta.unknown decide, for query strings too (webargs would EXCLUDE)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {}


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


def _error_schema():
    from app.errors import ErrorSchema

    return ErrorSchema


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _SchemaDecidesParser()

    def errors(self, *statuses, **descriptions):
        """Document the error answers an endpoint gives, each in the one error shape:
        `@bp.errors(401, 404)`; `descriptions` override by status, e.g. `d409="..."`."""

        def decorator(func):
            for status in reversed(statuses):
                description = descriptions.get(f"d{status}", ERROR_DESCRIPTIONS[status])
                func = self.alt_response(status, schema=_error_schema(), description=description)(func)
            return func

        return decorator
