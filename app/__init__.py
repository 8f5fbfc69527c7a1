"""Application factory (miguelgrinberg/microblog style)."""
import logging
from datetime import datetime

import mongoengine
import redis
from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from app.cookie_session import CookieSessionInterface
from app.errors import ApiError, register_error_handlers
from app.extensions import api, bcrypt, cors, jwt, limiter, socketio
from config import load_config

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


def connect_mongo(uri):
    mongoengine.disconnect()
    return mongoengine.connect(host=uri, tz_aware=True, serverSelectionTimeoutMS=3000, uuidRepresentation="standard")


def create_app(config_name=None, serve_socketio=True, **overrides):
    """Build the app. Workers and cron pass serve_socketio=False: they only emit, through the
    Redis message queue (app.realtime), and must not start a Socket.IO server of their own."""
    app = Flask(__name__)
    app.session_interface = CookieSessionInterface()
    app.json = IsoJSONProvider(app)
    config = load_config(config_name)
    app.config.from_object(config)
    app.config.update(overrides)
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # bcrypt reads at most 72 bytes: longer passwords are pre-hashed with SHA-256.
    app.config["BCRYPT_HANDLE_LONG_PASSWORDS"] = True
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    connect_mongo(app.config["MONGO_URI"])
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=3, socket_connect_timeout=3, health_check_interval=30
    )

    bcrypt.init_app(app)
    jwt.init_app(app)
    limiter.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    api.init_app(app)
    register_error_handlers(app)
    if serve_socketio:
        socketio.init_app(
            app,
            message_queue=app.config["REDIS_URL"],
            async_mode=app.config["ASYNC_MODE"],
            cors_allowed_origins=app.config["CORS_ORIGINS"] or None,
            max_http_buffer_size=app.config["STREAM_MAX_MESSAGE_BYTES"],
            # One connection's events are handled in arrival order: a stream's chunks must be
            # windowed and enqueued in sequence (concurrent handlers interleave at Redis I/O).
            async_handlers=False,
        )
        from app import streaming  # registers the Socket.IO handlers, but for audio's:

        streaming.register_audio_handler(socketio.server)

    from app.admin import init_admin
    from app.blueprints.auth import bp as auth_bp
    from app.blueprints.auth import tokens  # noqa: F401  (registers the JWT callbacks)
    from app.blueprints.analysis import bp as analysis_bp
    from app.blueprints.collective import bp as collective_bp
    from app.blueprints.dashboard import bp as dashboard_bp
    from app.blueprints.environment import bp as environment_bp
    from app.blueprints.export import bp as export_bp
    from app.blueprints.readings import bp as readings_bp
    from app.blueprints.sessions import bp as sessions_bp
    from app.blueprints.system import bp as system_bp
    from app.blueprints.system import docs_bp

    for blueprint in (auth_bp, analysis_bp, readings_bp, sessions_bp, collective_bp, environment_bp, export_bp, system_bp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_bp)
    app.register_blueprint(dashboard_bp)
    init_admin(app)

    from app.cli import register_cli

    register_cli(app)

    @app.before_request
    def require_json_bodies():
        # Only uploads take other media types; everything else under /api speaks JSON.
        if (request.method in ("POST", "PUT", "PATCH", "DELETE") and request.path.startswith("/api/")
                and (request.content_length or request.headers.get("Transfer-Encoding"))
                and not request.is_json and request.endpoint not in MEDIA_ENDPOINTS):
            raise ApiError(415, "Send the body as application/json", details={"content_type": request.content_type})

    @app.after_request
    def add_security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
