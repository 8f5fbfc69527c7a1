"""Configuration from the environment (and an optional .env), one class per deployment kind.

APP_ENV picks the class: development (default), production or testing. Every setting is listed
with its default in README.md.
"""
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")

VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
SECRET_NAMES = ("SECRET_KEY", "JWT_SECRET_KEY")
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names it."""


def _env(name, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def _env_int(name, default):
    return int(_env(name, default))


def _env_list(name, default=""):
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def _development_secrets():
    """Secrets generated once and kept under var/, so tokens survive a restart."""
    path = VAR_DIR / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if not all(stored.get(name) for name in SECRET_NAMES):
        stored = {name: stored.get(name) or secrets.token_urlsafe(48) for name in SECRET_NAMES}
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    return stored


class Config:
    APP_ENV = "development"
    # `make run` (devtools/devstack.py): worker processes, and the embedded servers it starts
    # when MONGO_URI or REDIS_URL is unset (sqlite keeps data across restarts; memory is faster,
    # for benchmarks of the app rather than of SQLite). Unset, MONGO_URI and REDIS_URL point at
    # those embedded servers, so every process and Flask command finds what `make run` started.
    WORKERS = _env_int("WORKERS", 1)
    EMBEDDED_MONGO_PORT = _env_int("EMBEDDED_MONGO_PORT", 27018)
    EMBEDDED_REDIS_PORT = _env_int("EMBEDDED_REDIS_PORT", 6380)
    EMBEDDED_MONGO_ENGINE = _env("EMBEDDED_MONGO_ENGINE", "sqlite")
    MONGO_URI = _env("MONGO_URI", f"mongodb://127.0.0.1:{EMBEDDED_MONGO_PORT}/moodmirror?directConnection=true")
    REDIS_URL = _env("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
    SECRET_KEY = _env("SECRET_KEY")
    JWT_SECRET_KEY = _env("JWT_SECRET_KEY")
    ASYNC_MODE = _env("ASYNC_MODE", "eventlet")
    PORT = _env_int("PORT", 5000)
    HOST = _env("HOST", "0.0.0.0")
    LOG_LEVEL = _env("LOG_LEVEL", "INFO").upper()

    JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=_env_int("JWT_ACCESS_SECONDS", 15 * 60))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=_env_int("JWT_REFRESH_SECONDS", 30 * 24 * 3600))
    JWT_TOKEN_LOCATION = ["headers"]
    PASSWORD_MIN_LENGTH = _env_int("PASSWORD_MIN_LENGTH", 10)
    BCRYPT_LOG_ROUNDS = _env_int("BCRYPT_LOG_ROUNDS", 12)

    # Password reset e-mail (Flask-Mail). With MAIL_SINK_DIR set, messages are written there
    # as .eml files instead of being sent (development and tests; empty in production).
    MAIL_SERVER = _env("MAIL_SERVER", "localhost")
    MAIL_PORT = _env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = _env("MAIL_USE_TLS", "false").lower() == "true"
    MAIL_USE_SSL = _env("MAIL_USE_SSL", "false").lower() == "true"
    MAIL_USERNAME = _env("MAIL_USERNAME")
    MAIL_PASSWORD = _env("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = _env("MAIL_DEFAULT_SENDER", "Mood Mirror <no-reply@localhost>")
    MAIL_SINK_DIR = _env("MAIL_SINK_DIR", str(VAR_DIR / "mail"))
    PASSWORD_RESET_SECONDS = _env_int("PASSWORD_RESET_SECONDS", 30 * 60)
    # The dashboard's address as users reach it, for links in e-mail; unset: the address the
    # request came to (set it in production, behind proxies, so a forged Host cannot redirect).
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "")

    MAX_UPLOAD_MB = _env_int("MAX_UPLOAD_MB", 25)
    MAX_AUDIO_SECONDS = _env_int("MAX_AUDIO_SECONDS", 600)
    CORS_ORIGINS = _env_list("CORS_ORIGINS", "")
    RETENTION_DAYS = _env_int("RETENTION_DAYS", 365)

    # The session cookie carries only the admin pages' sign-in (the API uses bearer tokens),
    # which ends at sign-out or after ADMIN_SESSION_SECONDS (app/admin/security.py).
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    ADMIN_SESSION_SECONDS = _env_int("ADMIN_SESSION_SECONDS", 12 * 3600)
    PERMANENT_SESSION_LIFETIME = timedelta(seconds=ADMIN_SESSION_SECONDS)

    # Windows of one live stream waiting for inference before the oldest are dropped.
    STREAM_MAX_PENDING = _env_int("STREAM_MAX_PENDING", 10)
    # A worker takes at most this many waiting windows (of any streams) per model call and
    # bulk insert (app/live/drain.py drain_windows).
    STREAM_BATCH_MAX = _env_int("STREAM_BATCH_MAX", 16)
    # A worker woken by a window waits this long for more before it takes them: a batch's
    # fixed costs, shared (docs/BENCHMARKS.md), against as much latency for its first window.
    STREAM_BATCH_WAIT_MS = _env_int("STREAM_BATCH_WAIT_MS", 25)
    STREAM_MAX_MESSAGE_BYTES = _env_int("STREAM_MAX_MESSAGE_BYTES", 1024 * 1024)
    # Per user, on the live channel (app/live/limits.py): Socket.IO connections and streams at
    # once (a few dashboard tabs and a CLI), and new sessions per minute (resuming one is free).
    STREAM_MAX_CONNECTIONS_PER_USER = _env_int("STREAM_MAX_CONNECTIONS_PER_USER", 10)
    STREAM_MAX_STREAMS_PER_USER = _env_int("STREAM_MAX_STREAMS_PER_USER", 5)
    STREAM_SESSIONS_PER_MINUTE = _env_int("STREAM_SESSIONS_PER_MINUTE", 20)
    # A user's streams together are read at most this many times real time (after a 10 s burst),
    # per web process: beyond it their chunks wait, and TCP holds the sender back.
    STREAM_USER_AUDIO_SPEED = _env_int("STREAM_USER_AUDIO_SPEED", 8)

    COLLECTIVE_INTERVAL_SECONDS = _env_int("COLLECTIVE_INTERVAL_SECONDS", 10)
    COLLECTIVE_WINDOW_MINUTES = _env_int("COLLECTIVE_WINDOW_MINUTES", 5)
    COLLECTIVE_MIN_USERS = _env_int("COLLECTIVE_MIN_USERS", 3)

    # Proxies in front of the web process (a platform's router, a load balancer) whose
    # X-Forwarded-For and X-Forwarded-Proto it trusts; 0 when clients reach it directly.
    TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)

    RATELIMIT_ENABLED = _env("RATELIMIT_ENABLED", "true").lower() == "true"
    RATELIMIT_AUTH_IP = _env("RATELIMIT_AUTH_IP", "20 per minute")
    RATELIMIT_AUTH_ACCOUNT = _env("RATELIMIT_AUTH_ACCOUNT", "5 per minute")
    RATELIMIT_REGISTER_TAKEN = _env("RATELIMIT_REGISTER_TAKEN", "5 per hour")
    RATELIMIT_DEFAULT = _env("RATELIMIT_DEFAULT", "600 per minute")

    # A worker's heartbeat (the Procfile passes it to rq's --job-monitoring-interval): health
    # counts the workers that beat within the last 3 beats.
    WORKER_HEARTBEAT_SECONDS = _env_int("WORKER_HEARTBEAT_SECONDS", 5)
    # `make run-cluster` (devtools/cluster.py): web processes behind HAProxy on PORT.
    WEB = _env_int("WEB", 2)

    API_TITLE = "Mood Mirror API"
    API_VERSION = "1.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    # Interactive docs are served from vendored files (no CDN): see the system blueprint.
    OPENAPI_SWAGGER_UI_PATH = None
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        },
        "info": {"description": "Real-time speech emotion analysis. See docs/ for the Socket.IO protocol."},
    }

    @property
    def MAX_CONTENT_LENGTH(self):
        return self.MAX_UPLOAD_MB * 1024 * 1024

    def validate(self):
        """Fill or check secrets; development makes its own, production refuses weak ones."""
        stored = _development_secrets() if self.APP_ENV == "development" else {}
        for name in SECRET_NAMES:
            if not getattr(self, name):
                setattr(self, name, stored.get(name))
        return self


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = True
    MAIL_SINK_DIR = _env("MAIL_SINK_DIR", "")

    def validate(self):
        for name in ("MONGO_URI", "REDIS_URL"):
            if not _env(name):
                raise ConfigError(f"{name} is not set: production needs it explicitly")
        for name in SECRET_NAMES:
            value = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} is not set: production needs a real secret")
            if len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{name} is too short: use at least {MIN_SECRET_LENGTH} random characters")
        return self


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    ASYNC_MODE = "threading"
    SECRET_KEY = "testing-secret-key-not-for-production-000000"
    JWT_SECRET_KEY = "testing-jwt-secret-key-not-for-production-00"
    BCRYPT_LOG_ROUNDS = 4
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=_env_int("TEST_JWT_ACCESS_SECONDS", 300))


CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "testing": TestingConfig}


def load_config(name=None):
    name = name or _env("APP_ENV", "development")
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name]().validate()
