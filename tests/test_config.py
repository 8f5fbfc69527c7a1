import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(env, tmp_path):
    """Load the configuration in a fresh interpreter, as a process would at start-up."""
    code = ("import config, json; c = config.load_config();"
            "print(json.dumps({'secret': c.SECRET_KEY, 'jwt': c.JWT_SECRET_KEY, 'env': c.APP_ENV,"
            " 'max': c.MAX_CONTENT_LENGTH, 'port': c.PORT}))")
    base = {"PATH": "/usr/bin", "VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)


def test_production_refuses_to_start_without_each_secret(tmp_path):
    complete = {"APP_ENV": "production", "MONGO_URI": "mongodb://db/x", "REDIS_URL": "redis://r:6379/0",
                "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}
    assert load(complete, tmp_path).returncode == 0
    for missing in ("SECRET_KEY", "JWT_SECRET_KEY", "MONGO_URI", "REDIS_URL"):
        env = {k: v for k, v in complete.items() if k != missing}
        out = load(env, tmp_path)
        assert out.returncode != 0
        assert f"ConfigError: {missing} is not set" in out.stderr
    weak = load({**complete, "JWT_SECRET_KEY": "changeme"}, tmp_path)
    assert weak.returncode != 0 and "JWT_SECRET_KEY is too short" in weak.stderr


def test_development_generates_secrets_once_and_keeps_them(tmp_path):
    first = load({}, tmp_path)
    second = load({}, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert '"env": "development"' in first.stdout
    secrets_file = tmp_path / "var" / "secrets.json"
    assert secrets_file.exists() and oct(secrets_file.stat().st_mode & 0o777) == "0o600"


def test_settings_come_from_the_environment(tmp_path):
    out = load({"MAX_UPLOAD_MB": "3", "PORT": "6123"}, tmp_path)
    assert '"max": 3145728' in out.stdout and '"port": 6123' in out.stdout
    bad = load({"APP_ENV": "staging"}, tmp_path)
    assert bad.returncode != 0 and "APP_ENV must be one of" in bad.stderr
