"""Dependency checks shared by /api/system/health and the CLI."""
from datetime import timedelta

import mongoengine
from flask import current_app
from rq import Worker

from app.models.base import utcnow

# A worker is alive while its last heartbeat is at most this many beats old (app/worker.py);
# its registration in Redis expires one second after that.
LIVE_BEATS = 3


def check_mongo():
    mongoengine.get_db().command("ping")


def check_redis(redis_client):
    redis_client.ping()


def live_workers(redis_client):
    """The workers that beat lately. A registration alone proves nothing: a worker killed with
    SIGKILL, or one whose Redis went before it could sign off, stays registered for a while."""
    cutoff = utcnow() - timedelta(seconds=LIVE_BEATS * current_app.config["WORKER_HEARTBEAT_SECONDS"])
    return [worker for worker in Worker.all(connection=redis_client)
            if worker.last_heartbeat is not None and worker.last_heartbeat >= cutoff]


def count_workers(redis_client):
    return len(live_workers(redis_client))


def health_report(redis_client):
    """Status of each part; a part is 'down' when its check fails or, for workers, none runs."""
    parts = {}
    for name, check in (("mongodb", check_mongo), ("redis", lambda: check_redis(redis_client))):
        try:
            check()
            parts[name] = {"status": "up"}
        except Exception as exc:  # any failure of a dependency is reported, never raised
            parts[name] = {"status": "down", "error": type(exc).__name__}
    if parts["redis"]["status"] == "up":
        workers = count_workers(redis_client)
        parts["workers"] = {"status": "up" if workers else "down", "count": workers}
    else:
        parts["workers"] = {"status": "unknown", "count": None}
    down = [name for name, part in parts.items() if part["status"] != "up"]
    return {"status": "ok" if not down else "unavailable", "down": down, "components": parts}
