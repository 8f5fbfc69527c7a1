"""Dependency checks shared by /api/system/health and the CLI."""
import mongoengine
from rq import Worker


def check_mongo():
    mongoengine.get_db().command("ping")


def check_redis(redis_client):
    redis_client.ping()


def count_workers(redis_client):
    return Worker.count(connection=redis_client)


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
