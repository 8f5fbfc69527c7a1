"""Benchmarks of the whole stack (api, stream) and of the embedded MongoDB-wire server."""
import sys
import tempfile

from devtools.cluster import free_port_block
from devtools.stack import DevStack


def bench_stack(workers, name, web=1, engine="memory", **env_overrides):
    """The stack as `make run` starts it (`make run-cluster` with web > 1: HAProxy in front of
    `web` web processes), in a fresh var dir on free ports, with the embedded MongoDB-wire server
    on its memory engine unless told (what is measured is the app, not SQLite)."""
    command = [sys.executable, "-m", "devtools.cluster" if web > 1 else "devtools.devstack"]
    if web > 1:
        env_overrides.setdefault("PORT", free_port_block(web + 1))
    return DevStack(workers, var_dir=tempfile.mkdtemp(prefix=f"bench-{name}-"), command=command, WEB=web,
                    LOG_LEVEL="WARNING",
                    EMBEDDED_MONGO_ENGINE=engine, RATELIMIT_ENABLED="false",
                    BCRYPT_LOG_ROUNDS="4",  # sign-ups are set-up here, not what is measured
                    **env_overrides)
