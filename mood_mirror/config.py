"""Where the command line keeps its sign-in: one JSON file in the user's config directory.

    ~/.config/mood-mirror/credentials.json   (Linux; $XDG_CONFIG_HOME is honoured)
    ~/Library/Application Support/mood-mirror/credentials.json   (macOS)

The file holds bearer tokens, so it is written 0600 in a 0700 directory, atomically (a
temporary file in the same directory, then a rename), and a file found readable by others is
narrowed back to 0600 with a warning.
"""
import base64
import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import platformdirs

APP_NAME = "mood-mirror"
DEFAULT_SERVER = "http://127.0.0.1:5000"
FILE_NAME = "credentials.json"


def config_dir():
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def credentials_path():
    return config_dir() / FILE_NAME


def load():
    """The saved sign-in ({"server", "email", "access_token", "refresh_token"}) or None."""
    path = credentials_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"mood-mirror: warning: {path} was readable by others; narrowed to 0600", file=sys.stderr)
        os.chmod(path, 0o600)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("access_token") and data.get("server") else None


def save(credentials):
    """Write the sign-in atomically with mode 0600 (the directory 0700)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    fd, temporary = tempfile.mkstemp(prefix=".credentials-", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(credentials, out, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, directory / FILE_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return directory / FILE_NAME


def delete():
    """Remove the saved sign-in; True when there was one."""
    try:
        credentials_path().unlink()
        return True
    except FileNotFoundError:
        return False


def token_expires_at(token):
    """The `exp` claim of a JWT (not verified: only to refresh before it runs out), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def expiring(token, margin_s=30.0):
    expires = token_expires_at(token)
    return expires is not None and expires - time.time() < margin_s
