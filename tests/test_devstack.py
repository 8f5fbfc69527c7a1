"""`make run` with no external services: the embedded stack comes up, works, stops on Ctrl-C,
and keeps its data across a restart."""
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_stack(tmp_path, ports):
    env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "REDIS_URL", "APP_ENV")}
    env.update(VAR_DIR=str(tmp_path / "var"), PORT=str(ports["web"]),
               EMBEDDED_MONGO_PORT=str(ports["mongo"]), EMBEDDED_REDIS_PORT=str(ports["redis"]))
    log = open(tmp_path / "stack.log", "ab")
    return subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(base, proc, log_path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            response = requests.get(f"{base}/api/system/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError("stack not healthy in time:\n" + log_path.read_text()[-3000:])


def ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def port_open(port):
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_serves_a_working_stack_and_keeps_data(tmp_path):
    ports = {"web": free_port(), "mongo": free_port(), "redis": free_port()}
    base = f"http://127.0.0.1:{ports['web']}"
    log_path = tmp_path / "stack.log"
    credentials = {"email": "ada@example.com", "password": "correct horse battery"}

    proc = start_stack(tmp_path, ports)
    try:
        health = wait_healthy(base, proc, log_path)
        assert health["components"]["workers"]["count"] >= 1
        assert requests.get(f"{base}/api/docs", timeout=5).status_code == 200
        registered = requests.post(f"{base}/api/auth/register", json=credentials, timeout=10)
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        profile = requests.get(f"{base}/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert profile.json()["email"] == credentials["email"]
    finally:
        ctrl_c(proc)
    output = log_path.read_text()
    assert f"{base}/api/docs" in output
    assert not any(port_open(p) for p in ports.values()), "a process outlived Ctrl-C"

    proc = start_stack(tmp_path, ports)
    try:
        wait_healthy(base, proc, log_path)
        login = requests.post(f"{base}/api/auth/login", json=credentials, timeout=10)
        assert login.status_code == 200, login.text
        # The token issued before the restart is still valid: the development secrets were kept.
        profile = requests.get(f"{base}/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert profile.status_code == 200
    finally:
        ctrl_c(proc)
