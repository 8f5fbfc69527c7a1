"""The API conventions: error shape for every status, health, docs, headers, media types."""
import json
import subprocess
import sys

import redis
from rq import Worker

from helpers import assert_error


def test_health_names_missing_workers_then_is_ok_when_one_runs(app, client):
    response = client.get("/api/system/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["workers"]
    assert body["components"]["mongodb"]["status"] == "up"
    assert body["components"]["redis"]["status"] == "up"

    worker = Worker(["analysis"], connection=app.extensions["redis"])
    worker.register_birth()
    try:
        response = client.get("/api/system/health")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["components"]["workers"] == {"status": "up", "count": 1}
    finally:
        worker.register_death()


def test_health_counts_only_workers_that_beat_lately(app, client):
    """A registration is not life: a worker killed with SIGKILL stays registered. Counted only
    while its last heartbeat is at most 3 beats (WORKER_HEARTBEAT_SECONDS) old."""
    from datetime import UTC, datetime, timedelta

    from rq.utils import utcformat

    beat = app.config["WORKER_HEARTBEAT_SECONDS"]
    worker = Worker(["analysis"], connection=app.extensions["redis"])
    worker.register_birth()
    try:
        for age, counted in ((3 * beat - 1, 1), (3 * beat + 1, 0)):
            last = datetime.now(UTC) - timedelta(seconds=age)
            app.extensions["redis"].hset(worker.key, "last_heartbeat", utcformat(last))
            workers = client.get("/api/system/health").get_json()["components"]["workers"]
            assert workers["count"] == counted, (age, workers)
    finally:
        worker.register_death()


def test_health_reports_redis_down(app):
    from app.system.health import health_report

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with app.app_context():
        report = health_report(dead)
    assert report["status"] == "unavailable"
    assert report["down"] == ["redis", "workers"]
    assert report["components"]["mongodb"]["status"] == "up"


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/api/nope"), 404, "not_found")


def test_wrong_method_is_json_405_with_allowed_methods(client):
    error = assert_error(client.delete("/api/system/health"), 405, "method_not_allowed")
    assert "GET" in error["details"]["allowed"]


def test_body_over_the_upload_limit_is_413(app, client):
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    response = client.post("/api/auth/login", data=b"{" + b" " * size, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_non_json_body_is_415(client):
    response = client.post("/api/auth/login", data="email=a@b.c", content_type="application/x-www-form-urlencoded")
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]


def test_malformed_json_is_a_client_error(client):
    response = client.post("/api/auth/login", data="{not json", content_type="application/json")
    error = assert_error(response, 400)
    assert error["code"] == "bad_request"


def test_json_that_is_not_an_object_is_422(client):
    for body in ("[]", "42", '"text"', "null"):
        response = client.post("/api/auth/login", data=body, content_type="application/json")
        assert response.status_code in (400, 422), (body, response.get_json())
        assert_error(response, response.status_code)


def test_unexpected_failure_is_a_json_500_without_internals(app, client, monkeypatch):
    import app.system.routes as routes

    def explode(_redis):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(routes, "health_report", explode)
    response = client.get("/api/system/health")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert error["message"] == "Internal server error"


def test_security_headers_on_every_response(client):
    for response in (client.get("/api/system/health"), client.get("/api/nope"), client.get("/api/docs")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_cors_only_for_configured_origins(client):
    response = client.get("/api/system/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_openapi_document_and_interactive_docs(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "Mood Mirror API"
    assert "/api/auth/login" in spec["paths"]
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    error_schema = spec["components"]["schemas"]["Error"]
    assert set(error_schema["properties"]) == {"error"}
    page = client.get("/api/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    script = client.get("/static/vendor/swagger-ui-dist/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.data) > 100_000


# What the Procfile's processes load: web (wsgi), release (app.cli), worker (the worker class, its
# jobs' modules and the model it loads at start) and cron (the file rq cron reads).
ENTRY_POINTS = ("import os, sys; os.environ['ASYNC_MODE']='threading';"
                "import wsgi, app.cli, app.worker, app.live.drain, app.analysis.jobs, app.collective.snapshot;"
                "import runpy; runpy.run_path('app/collective/cron.py');"
                "from app.analysis.model import recognizer; recognizer();")
TRAINING_ONLY = {"tensorflow", "keras", "sklearn", "librosa", "opensmile", "matplotlib", "scipy", "ctranslate2"}


def _imported_by_entry_points():
    code = ENTRY_POINTS + "import json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"APP_ENV": "testing", "MONGO_URI": "mongodb://127.0.0.1:1/x", "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_web_worker_and_cron_import_no_training_stack():
    """The Procfile's processes import none of the training stack (installed here for the ML
    tests). That requirements.txt alone runs them is shown by tests/test_lean_runtime.py."""
    imported = _imported_by_entry_points()
    assert imported & TRAINING_ONLY == set()
    assert {"ai_edge_litert", "flask_socketio", "rq"} <= imported  # the check saw the real processes


def test_web_and_worker_code_never_import_devtools():
    """devtools/ (devstack, the embedded MongoDB-wire server, demo data) is for development only."""
    code = (
        "import os, sys; os.environ['ASYNC_MODE']='threading';"
        "import wsgi; import app.worker, app.live.drain, app.analysis.jobs, app.collective.cron;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'devtools')))"
    )
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, timeout=120,
                         env={"APP_ENV": "testing", "MONGO_URI": "mongodb://127.0.0.1:1/x", "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
