"""The stack driven from outside: the test suite and the benchmarks start it, wait until it is
healthy and stop it; the process helpers here are shared with devtools.devstack.

* Stack: the Procfile's processes (release, web, workers, optionally cron) against a MongoDB
  and a Redis that the caller provides, as production runs them, with this interpreter's
  environment or another virtualenv's (bin_dir).
* DevStack: `make run`'s stack (python -m devtools.devstack, or `make run` itself), which starts
  the embedded MongoDB-wire and Redis servers of its own.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc=None, timeout=30, name="process"):
    """Return once something listens on the local `port`; RuntimeError when `proc` exits first
    or nothing listens within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout} s")


def stop_process(proc, timeout=10, group=False, sig=signal.SIGTERM):
    """Stop a process with `sig`, then SIGKILL after `timeout` seconds; with group, its whole
    process group (a shell and what it started)."""
    def send(signum):
        try:
            os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        except ProcessLookupError:
            pass

    send(sig)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        code = proc.wait()
    if group:  # the leader may be a shell that exits before what it started (rq's warm shutdown)
        deadline = time.monotonic() + timeout
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        send(signal.SIGKILL)
    return code


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mongo_wire_command(port, engine="memory", path=None):
    """The embedded MongoDB-wire server's command line (devtools/mongo_wire.py)."""
    return [sys.executable, "-m", "devtools.mongo_wire", "--engine", engine, "--port", str(port),
            *(["--path", str(path)] if path else [])]


def start_mongo_wire(port, engine="memory", path=None):
    proc = subprocess.Popen(mongo_wire_command(port, engine, path), cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_for_port(port, proc, name="mongo-wire")
    return proc


class Stack:
    """The Procfile's processes on a free port, each in its own process group and logging to
    `log_dir`/<name>.log, against the given MongoDB and Redis."""

    STOP_SIGNAL = signal.SIGTERM
    STOP_TIMEOUT_S = 10

    def __init__(self, mongo_uri, redis_url, log_dir, workers=1, extra_env=None, cron=False, bin_dir=None):
        self.bin_dir = Path(bin_dir or Path(sys.executable).parent)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mongo_uri, self.redis_url = mongo_uri, redis_url
        self.env = {**os.environ, "APP_ENV": "development", "MONGO_URI": mongo_uri, "REDIS_URL": redis_url,
                    "PORT": str(self.port), "HOST": "127.0.0.1", "VAR_DIR": str(log_dir / "var"),
                    "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "false", **(extra_env or {})}
        self._put_python_on_path()
        self.commands = parse_procfile((ROOT / "Procfile").read_text()).processes
        self.log_dir, self.workers, self.cron = log_dir, workers, cron
        self.processes = {}

    def _put_python_on_path(self):
        # The Procfile's commands (flask, rq, python) are bin_dir's.
        self.env["PATH"] = os.pathsep.join([str(self.bin_dir), self.env.get("PATH", "")])

    def start_process(self, name, command, **env):
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(command, shell=isinstance(command, str), cwd=ROOT,
                                                env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def start(self):
        subprocess.run(self.commands["release"], shell=True, cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        self.start_process("web", self.commands["web"])
        for n in range(self.workers):
            self.start_process(f"worker.{n + 1}", self.commands["worker"])
        if self.cron:
            self.start_process("cron", self.commands["cron"])
        self.wait_healthy()
        return self

    def healthy(self, response):
        """The health report once the stack is ready (every worker counted), else None."""
        health = response.json()
        return health if health.get("components", {}).get("workers", {}).get("count", 0) >= self.workers else None

    def wait_healthy(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            try:
                health = self.healthy(requests.get(f"{self.base_url}/api/system/health", timeout=2))
                if health is not None:
                    return health
            except (requests.RequestException, ValueError):  # not listening yet, or a balancer waiting for it
                pass
            time.sleep(0.3)
        raise RuntimeError("stack not healthy:\n" + "\n".join(self.log(n)[-2000:] for n in self.processes))

    def log(self, name):
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self):
        for proc in self.processes.values():
            stop_process(proc, timeout=self.STOP_TIMEOUT_S, group=True, sig=self.STOP_SIGNAL)


class DevStack(Stack):
    """`make run`'s stack as one process (`command`, python -m devtools.devstack by default) in a
    var dir of its own (a fresh one unless given), logging to <var dir>/stack.log; healthy once
    /api/system/health answers 200. Ctrl-C (SIGINT) stops it, as it stops `make run`."""

    STOP_SIGNAL = signal.SIGINT
    STOP_TIMEOUT_S = 30

    def __init__(self, workers=1, var_dir=None, command=None, **env_overrides):
        self.log_dir = Path(var_dir or tempfile.mkdtemp(prefix="mood-mirror-stack-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = int(env_overrides.get("PORT") or free_port())
        self.base_url = f"http://127.0.0.1:{self.port}"
        mongo_port = int(env_overrides.get("EMBEDDED_MONGO_PORT") or free_port())
        self.mongo_uri = f"mongodb://127.0.0.1:{mongo_port}/moodmirror?directConnection=true"
        self.env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "REDIS_URL", "APP_ENV")}
        self.env.update(VAR_DIR=str(self.log_dir), PORT=str(self.port), WORKERS=str(workers),
                        EMBEDDED_MONGO_PORT=str(mongo_port),
                        EMBEDDED_REDIS_PORT=str(env_overrides.get("EMBEDDED_REDIS_PORT") or free_port()))
        self.env.update({name: str(value) for name, value in env_overrides.items()})
        self.bin_dir = Path(sys.executable).parent
        self._put_python_on_path()
        self.workers, self.processes = workers, {}
        self.start_process("stack", command or [sys.executable, "-m", "devtools.devstack"])

    def healthy(self, response):
        return response.json() if response.status_code == 200 else None

    def process_tree(self):
        """psutil.Process of the stack's every process (for CPU and memory figures)."""
        import psutil

        root = psutil.Process(self.processes["stack"].pid)
        return [root, *root.children(recursive=True)]
