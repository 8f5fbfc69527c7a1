"""HTTP policy of every response: times in ISO 8601, JSON bodies under /api, security headers,
and the one error shape (app.api.errors)."""
from datetime import datetime

from flask import request
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from app.api.errors import ApiError, register_error_handlers

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
    # Everything the pages use is served from this origin (vendored, no CDN).
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self' ws: wss:; media-src 'self' blob:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
}

# Endpoints whose request bodies are media (audio uploads), not JSON.
MEDIA_ENDPOINTS = {"analysis.analyze"}


class IsoJSONProvider(DefaultJSONProvider):
    """Times in ISO 8601 everywhere (Flask's default is the HTTP date format)."""

    @staticmethod
    def default(o):
        if isinstance(o, datetime):
            return o.isoformat()
        return DefaultJSONProvider.default(o)

    def loads(self, s, **kwargs):
        # Too deeply nested is invalid JSON (a ValueError, so get_json(silent=True) gives None).
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply")


def require_json_bodies():
    # Only uploads take other media types; everything else under /api speaks JSON.
    if (request.method in ("POST", "PUT", "PATCH", "DELETE") and request.path.startswith("/api/")
            and (request.content_length or request.headers.get("Transfer-Encoding"))
            and not request.is_json and request.endpoint not in MEDIA_ENDPOINTS):
        raise ApiError(415, "Send the body as application/json", details={"content_type": request.content_type})


def add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def trust_proxies(wsgi_app, hops):
    """Requests as the client sent them to the first of `hops` trusted proxies (its address from
    X-Forwarded-For, its scheme from X-Forwarded-Proto): behind a balancer, per-address rate
    limits then count clients, not the balancer. A client's own X-Forwarded-For is not believed."""
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops) if hops else wsgi_app


def init_app(app):
    app.wsgi_app = trust_proxies(app.wsgi_app, app.config["TRUSTED_PROXY_HOPS"])
    app.json = IsoJSONProvider(app)
    register_error_handlers(app)
    app.before_request(require_json_bodies)
    app.after_request(add_security_headers)
