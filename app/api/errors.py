"""One error shape for every 4xx and 5xx: {"error": {"code", "message", "details"}}."""
import logging
import time

import marshmallow as ma
from flask import current_app
from flask_smorest import Api
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# A backing service that is down, by the exceptions its client raises: REST answers 503 and
# Socket.IO handlers an `error` service_unavailable, each naming the component.
BACKING_SERVICE_ERRORS = (
    (RedisConnectionError, "redis"),
    (RedisTimeoutError, "redis"),
    (ServerSelectionTimeoutError, "mongodb"),
    (AutoReconnect, "mongodb"),
    (ConnectionFailure, "mongodb"),
)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """Raised anywhere in a request to answer with the error shape."""

    def __init__(self, status, message, code=None, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.details = details or {}
        self.headers = headers or {}


def invalid_input(location, field, message):
    """A 422 about one field of one location ("json", "query", "form"), in the shape of webargs'
    own validation errors."""
    return ApiError(422, f"Invalid input: {field}", details={"fields": {location: {field: [message]}}})


def error_body(status, message, code=None, details=None):
    return {"error": {"code": code or CODES.get(status, "error"), "message": message, "details": details or {}}}


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "Machine-readable error code"})
    message = ma.fields.String(metadata={"description": "What went wrong, for people"})
    details = ma.fields.Dict(metadata={"description": "Field errors or other context"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorDetailSchema)


def _validation_message(fields):
    names = []
    for location_errors in fields.values():
        if isinstance(location_errors, dict):
            names.extend(str(name) for name in location_errors)
    return f"Invalid input: {', '.join(names)}" if names else "Invalid input"


class ErrorShapeApi(Api):
    """flask-smorest Api whose HTTP errors (including webargs 422s) use our error shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        data = getattr(error, "data", None) or {}
        status = error.code or 500
        details = {}
        if "messages" in data:  # webargs validation failure
            details = {"fields": data["messages"]}
            message = data.get("message") or _validation_message(data["messages"])
        else:
            message = data.get("message") or error.description or error.name
            details = data.get("errors") or {}
        headers = data.get("headers") or {}
        if status == 413:
            limit_mb = current_app.config["MAX_UPLOAD_MB"]
            message = f"The upload is larger than {limit_mb} MB, the most this server accepts"
            details = {"max_mb": limit_mb}
        if status == 429:
            message, details, headers = _rate_limited(error.description, headers)
        if status == 405 and getattr(error, "valid_methods", None):
            details = {"allowed": sorted(error.valid_methods)}
        return error_body(status, message, details=details), status, headers


def _rate_limited(description, headers):
    """What happened and when to retry, instead of Flask-Limiter's bare "5 per 1 minute"."""
    from app.extensions import limiter

    current = limiter.current_limit
    # Rounded as Flask-Limiter rounds its Retry-After header, so both say the same.
    wait = max(1, int(current.reset_at - time.time())) if current else 60
    limit = str(description).replace(" per 1 ", " per ")
    message = f"Too many requests: the limit is {limit}. Try again in {wait} second{'s' if wait != 1 else ''}"
    return message, {"retry_after": wait, "limit": limit}, {**headers, "Retry-After": str(wait)}


def down_component(error):
    """The backing service whose failure `error` is ("redis", "mongodb"), else None."""
    return next((name for kind, name in BACKING_SERVICE_ERRORS if isinstance(error, kind)), None)


def _dependency_down(component):
    def handler(error):
        log.warning("%s unavailable: %s", component, error)
        return error_body(503, f"{component} is unavailable; try again shortly", details={"component": component}), 503

    return handler


def register_error_handlers(app):
    @app.errorhandler(ApiError)
    def handle_api_error(error):
        return error_body(error.status, error.message, error.code, error.details), error.status, error.headers

    for exc, component in BACKING_SERVICE_ERRORS:
        app.register_error_handler(exc, _dependency_down(component))

    # HTTPExceptions have their own, more specific handler (ErrorShapeApi); this one sees the rest.
    @app.errorhandler(Exception)
    def handle_unexpected(error):
        log.exception("unhandled error")
        return error_body(500, "Internal server error"), 500
