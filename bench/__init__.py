"""Benchmarks of the whole stack (api, stream) and of the embedded MongoDB-wire server."""
import tempfile

from devtools.stack import DevStack


def bench_stack(workers, name, engine="memory", **env_overrides):
    """The stack as `make run` starts it, in a fresh var dir on free ports, with the embedded
    MongoDB-wire server on its memory engine unless told (what is measured is the app, not SQLite)."""
    return DevStack(workers, var_dir=tempfile.mkdtemp(prefix=f"bench-{name}-"), LOG_LEVEL="WARNING",
                    EMBEDDED_MONGO_ENGINE=engine, RATELIMIT_ENABLED="false",
                    BCRYPT_LOG_ROUNDS="4",  # sign-ups are set-up here, not what is measured
                    **env_overrides)
