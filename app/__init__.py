"""Application factory (miguelgrinberg/microblog style): each area is a package that brings its
own blueprint; this module only wires them together."""
import logging

from flask import Flask

from app.api import http
from app.auth.mail import init_mail
from app.extensions import api, bcrypt, connect_mongo, connect_redis, cors, jwt, limiter, socketio
from config import load_config


def create_app(config_name=None, serve_socketio=True, **overrides):
    """Build the app. Workers and cron pass serve_socketio=False: they only emit, through the
    Redis message queue (app.realtime), and must not start a Socket.IO server of their own."""
    app = Flask(__name__)
    config = load_config(config_name)
    app.config.from_object(config)
    app.config.update(overrides)
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # bcrypt reads at most 72 bytes: longer passwords are pre-hashed with SHA-256.
    app.config["BCRYPT_HANDLE_LONG_PASSWORDS"] = True
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    connect_mongo(app.config["MONGO_URI"])
    app.extensions["redis"] = connect_redis(app.config["REDIS_URL"])

    bcrypt.init_app(app)
    init_mail(app)
    jwt.init_app(app)
    limiter.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    api.init_app(app)
    http.init_app(app)
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
        from app.live import handlers

        handlers.register_audio_handler(socketio.server)

    from app.admin import init_admin
    from app.analysis import routes as analysis
    from app.auth import routes as auth
    from app.cli import register_cli
    from app.collective import routes as collective
    from app.dashboard import routes as dashboard
    from app.environment import routes as environment
    from app.export import routes as export
    from app.readings import routes as readings
    from app.sessions import routes as sessions
    from app.system import routes as system

    for area in (auth, analysis, readings, sessions, collective, environment, export, system):
        api.register_blueprint(area.bp)
    app.register_blueprint(system.docs_bp)
    app.register_blueprint(dashboard.bp)
    init_admin(app)
    register_cli(app)
    return app
