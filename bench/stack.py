"""The stack the benchmarks measure: `python -m app.devstack` (as `make run` starts it) in a
fresh var dir, on free ports, with the embedded servers (MongoDB-wire on its memory engine)."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    def __init__(self, workers, name, **env_overrides):
        self.var = tempfile.mkdtemp(prefix=f"bench-{name}-")
        self.port, mongo_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "REDIS_URL")}
        env.update(VAR_DIR=self.var, PORT=str(self.port), WORKERS=str(workers), LOG_LEVEL="WARNING",
                   EMBEDDED_MONGO_PORT=str(mongo_port), EMBEDDED_REDIS_PORT=str(free_port()),
                   EMBEDDED_MONGO_ENGINE="memory", RATELIMIT_ENABLED="false",
                   BCRYPT_LOG_ROUNDS="4",  # sign-ups are set-up here, not what is measured
                   **env_overrides)
        self.log = open(Path(self.var) / "stack.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.devstack"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mongo_uri = f"mongodb://127.0.0.1:{mongo_port}/moodmirror?directConnection=true"

    def wait_healthy(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the stack exited; see {self.var}/stack.log")
            try:
                if requests.get(f"{self.base_url}/api/system/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        sys.exit(f"the stack is not healthy after {timeout} s; see {self.var}/stack.log")

    def processes(self):
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
