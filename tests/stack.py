"""The real processes, started as the Procfile starts them (web under eventlet, RQ workers),
against the test session's MongoDB-wire server and Redis."""
import os
import subprocess
import time
from pathlib import Path

import requests
from honcho.environ import parse_procfile

from conftest import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(self, mongo_uri, redis_url, log_dir, workers=1, extra_env=None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mongo_uri, self.redis_url = mongo_uri, redis_url
        self.env = {**os.environ, "APP_ENV": "development", "MONGO_URI": mongo_uri, "REDIS_URL": redis_url,
                    "PORT": str(self.port), "HOST": "127.0.0.1", "VAR_DIR": str(log_dir / "var"),
                    "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "false", **(extra_env or {})}
        self.env["PATH"] = os.pathsep.join([str(Path(os.sys.executable).parent), self.env.get("PATH", "")])
        self.commands = parse_procfile((ROOT / "Procfile").read_text()).processes
        self.log_dir, self.workers = log_dir, workers
        self.processes = {}

    def start_process(self, name, command):
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(command, shell=True, cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self):
        subprocess.run(self.commands["release"], shell=True, cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        self.start_process("web", self.commands["web"])
        for n in range(self.workers):
            self.start_process(f"worker.{n + 1}", self.commands["worker"])
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            try:
                health = requests.get(f"{self.base_url}/api/system/health", timeout=2).json()
                if health.get("components", {}).get("workers", {}).get("count", 0) >= self.workers:
                    return health
            except (requests.ConnectionError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError("stack not healthy:\n" + "\n".join(self.log(n)[-2000:] for n in self.processes))

    def log(self, name):
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self):
        for proc in self.processes.values():
            stop_process(proc, group=True)
