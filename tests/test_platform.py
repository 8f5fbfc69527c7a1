"""What a Heroku-style platform reads: the Procfile, app.json (processes, add-ons, config vars)
and the runtime pin agree with each other and with config.py."""
import json
from pathlib import Path

from honcho.environ import parse_procfile

from app.api.http import trust_proxies
from config import SECRET_NAMES

ROOT = Path(__file__).resolve().parent.parent


def manifest():
    return json.loads((ROOT / "app.json").read_text())


def test_app_json_names_the_procfile_processes_and_a_release_phase():
    processes = parse_procfile((ROOT / "Procfile").read_text()).processes
    assert set(manifest()["formation"]) == set(processes) - {"release"}
    assert processes["release"].startswith("flask --app app:create_app db ensure-indexes")


def test_app_json_provides_every_setting_production_requires():
    """ProductionConfig refuses to start without MONGO_URI, REDIS_URL and the secrets."""
    app = manifest()
    env = app["env"]
    assert env["APP_ENV"]["value"] == "production"
    assert env["MONGO_URI"]["required"] is True
    assert all(env[name]["generator"] == "secret" for name in SECRET_NAMES)
    assert [addon["as"] for addon in app["addons"]] == ["REDIS"]  # the add-on sets REDIS_URL
    assert all(setting.get("description") for setting in env.values())


def test_python_version_is_pinned_for_the_platform():
    assert (ROOT / ".python-version").read_text().strip() == "3.13"


def _login_statuses(client, address, count):
    return [client.post("/api/auth/login", json={"email": f"{address}-{i}@example.com", "password": "x" * 12},
                        headers={"X-Forwarded-For": address}).status_code for i in range(count)]


def test_behind_a_trusted_proxy_rate_limits_count_each_client(app, monkeypatch):
    monkeypatch.setattr(app, "wsgi_app", trust_proxies(app.wsgi_app, 1))
    client = app.test_client()
    assert _login_statuses(client, "203.0.113.1", 21) == [401] * 20 + [429]
    assert _login_statuses(client, "203.0.113.2", 1) == [401]  # another client behind the same balancer


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(client):
    assert _login_statuses(client, "203.0.113.1", 21) == [401] * 20 + [429]
    assert _login_statuses(client, "203.0.113.2", 1) == [429]  # the same caller, whatever it claims
