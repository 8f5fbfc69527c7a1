"""`make run-cluster`: the scale-out topology on one machine. HAProxy on PORT in front of WEB
web processes (sticky: a cookie names each client's web process; WebSocket connections stay on
theirs anyway), WORKERS workers and cron, with the embedded MongoDB-wire and Redis servers
unless MONGO_URI / REDIS_URL are set. Everything but the balancer is the Procfile's.

Cluster is the same topology for the tests, each process started on its own so that one can be
killed; bench.stream --web N runs main() as `make run-cluster` does.
"""
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools.stack import ROOT, Stack, free_port, wait_for_port

COOKIE = "SERVERID"


def free_port_block(count):
    """A port p with p, p+1, ... p+count-1 free: `make run-cluster`'s balancer takes PORT and its
    web processes the next ones."""
    while True:
        base = free_port()
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()


def haproxy_path():
    """The haproxy binary, or None where it is not installed (scripts/system-deps.sh installs it)."""
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)


def web_name(n):
    return f"web{n}"


def haproxy_config(bind, port, web_ports, stats_socket):
    """The balancer: round robin for new clients, then a cookie (SERVERID=web<n>) keeps each on its
    web process, which Engine.IO's long-polling needs (every poll must reach the process that
    holds the connection). A client whose web process is down is sent to another (redispatch),
    where it reconnects and resumes its session. Tunnels (WebSocket) live up to an hour idle."""
    servers = "\n".join(f"    server {web_name(n)} 127.0.0.1:{p} check inter 1s fall 2 rise 1 cookie {web_name(n)}"
                        for n, p in enumerate(web_ports, 1))
    return f"""global
    stats socket {stats_socket} mode 600 level admin

defaults
    mode http
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-keep-alive 10s

frontend mood_mirror
    bind {bind}:{port}
    default_backend web

backend web
    balance roundrobin
    cookie {COOKIE} insert indirect nocache
{servers}
"""


def _servers(stats_socket):
    """HAProxy's statistics row of each web process (its stats socket's `show stat`)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {r["svname"]: r for r in rows if r["pxname"] == "web" and r["svname"] not in ("BACKEND", "FRONTEND")}


def served(stats_socket):
    """{web<n>: HTTP requests it has been given}."""
    return {name: int(row["req_tot"]) for name, row in _servers(stats_socket).items()}


def wait_all_up(stats_socket, timeout=60):
    """Return once the balancer sends to every web process (a stack answers as soon as one does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(row["status"] == "UP" for row in _servers(stats_socket).values()):
                return
        except OSError:  # the balancer is not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not every web process is up behind the balancer within {timeout} s")


class Cluster(Stack):
    """HAProxy on a free port (base_url) in front of `web` web processes (web.<n>), `workers`
    workers and cron, each in its own process group, against the given MongoDB and Redis."""

    def __init__(self, mongo_uri, redis_url, log_dir, web=2, workers=2, extra_env=None):
        super().__init__(mongo_uri, redis_url, log_dir, workers=workers, extra_env=extra_env, cron=True)
        self.web_ports = [free_port() for _ in range(web)]
        self.stats_socket = Path(log_dir) / "haproxy.sock"

    def start(self):
        subprocess.run(self.commands["release"], shell=True, cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        for n, port in enumerate(self.web_ports, 1):
            self.start_process(f"web.{n}", self.commands["web"], PORT=str(port), TRUSTED_PROXY_HOPS="1")
        for n in range(self.workers):
            self.start_process(f"worker.{n + 1}", self.commands["worker"])
        self.start_process("cron", self.commands["cron"])
        for n, port in enumerate(self.web_ports, 1):
            wait_for_port(port, self.processes[f"web.{n}"], 60, f"web.{n}")
        config = self.log_dir / "haproxy.cfg"
        config.write_text(haproxy_config("127.0.0.1", self.port, self.web_ports, self.stats_socket))
        self.start_process("haproxy", [haproxy_path(), "-db", "-f", str(config)])
        wait_for_port(self.port, self.processes["haproxy"], 10, "haproxy")
        wait_all_up(self.stats_socket)
        self.wait_healthy()
        return self

    def served(self):
        return served(self.stats_socket)


def main():
    """make run-cluster: devtools.devstack's embedded servers and release step, then the cluster
    under honcho until Ctrl-C, each process kept running as `make run` keeps its own."""
    from honcho.manager import Manager

    from config import VAR_DIR as VAR
    from config import Config
    from devtools.devstack import add_workers_and_cron, process_env, released, respawned

    if haproxy_path() is None:
        sys.exit("haproxy is not installed: run scripts/system-deps.sh (Debian: apt-get install haproxy)")
    env = process_env()
    port = int(env.get("PORT") or Config.PORT)
    web_ports = [port + n for n in range(1, Config.WEB + 1)]
    with released(env) as processes:
        config = VAR / "haproxy.cfg"
        config.write_text(haproxy_config(Config.HOST, port, web_ports, VAR / "haproxy.sock"))

        manager = Manager()
        for n, web_port in enumerate(web_ports, 1):
            web_env = {**env, "HOST": "127.0.0.1", "PORT": str(web_port), "TRUSTED_PROXY_HOPS": "1"}
            manager.add_process(f"web.{n}", respawned(processes["web"]), env=web_env, cwd=ROOT)
        add_workers_and_cron(manager, processes, env)
        manager.add_process("haproxy", respawned(f"{haproxy_path()} -db -f {config}"), env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        print(f"\n  Mood Mirror behind HAProxy: {base}/  ({Config.WEB} web processes on ports "
              f"{', '.join(map(str, web_ports))}, {Config.WORKERS} workers, cron)\n"
              f"  API docs: {base}/api/docs   Health: {base}/api/system/health\n  Ctrl-C stops everything.\n",
              flush=True)
        manager.loop()
        return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
