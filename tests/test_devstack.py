"""`make run` with no external services: the embedded stack comes up, works, stops on Ctrl-C,
and keeps its data across a restart."""
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from devtools.stack import ROOT, DevStack, free_port

MAKE_RUN = ["make", "--no-print-directory", "run"]


def start_stack(tmp_path, ports):
    return DevStack(var_dir=tmp_path / "var", command=MAKE_RUN, PORT=ports["web"],
                    EMBEDDED_MONGO_PORT=ports["mongo"], EMBEDDED_REDIS_PORT=ports["redis"])


def flask_command(tmp_path, ports, *args):
    """A Flask command as a developer runs it next to `make run`: MONGO_URI and REDIS_URL unset,
    the embedded servers' ports in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "REDIS_URL", "APP_ENV")}
    env.update(VAR_DIR=str(tmp_path / "var"), EMBEDDED_MONGO_PORT=str(ports["mongo"]),
               EMBEDDED_REDIS_PORT=str(ports["redis"]),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    return subprocess.run(["flask", "--app", "app:create_app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def port_open(port):
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_serves_a_working_stack_and_keeps_data(tmp_path):
    ports = {"web": free_port(), "mongo": free_port(), "redis": free_port()}
    base = f"http://127.0.0.1:{ports['web']}"
    credentials = {"email": "ada@example.com", "password": "correct horse battery"}

    stack = start_stack(tmp_path, ports)
    try:
        health = stack.wait_healthy(timeout=90)
        assert health["components"]["workers"]["count"] >= 1
        assert requests.get(f"{base}/api/docs", timeout=5).status_code == 200
        registered = requests.post(f"{base}/api/auth/register", json=credentials, timeout=10)
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        profile = requests.get(f"{base}/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert profile.json()["email"] == credentials["email"]
        # The Flask commands find the servers `make run` started on the EMBEDDED_* ports.
        admin = flask_command(tmp_path, ports, "users", "create-admin", "--email", "root@example.com",
                              "--password", "admin password 1")
        assert admin.returncode == 0 and "root@example.com is an admin" in admin.stdout, admin.stderr
    finally:
        stack.stop()  # Ctrl-C
    output = stack.log("stack")
    assert f"{base}/api/docs" in output
    assert not any(port_open(p) for p in ports.values()), "a process outlived Ctrl-C"
    # Everything stopped in order: no process lost Redis or MongoDB under its feet.
    assert "Traceback" not in output and "ConnectionError" not in output, output[-3000:]
    # With nothing running, a command says so in one line.
    down = flask_command(tmp_path, ports, "users", "create-admin", "--email", "root@example.com",
                         "--password", "admin password 1")
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert f"Error: no MongoDB answers at 127.0.0.1:{ports['mongo']}" in down.stderr
    assert "Start `make run`" in down.stderr

    stack = start_stack(tmp_path, ports)
    try:
        stack.wait_healthy(timeout=90)
        login = requests.post(f"{base}/api/auth/login", json=credentials, timeout=10)
        assert login.status_code == 200, login.text
        # The token issued before the restart is still valid: the development secrets were kept.
        profile = requests.get(f"{base}/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert profile.status_code == 200
    finally:
        stack.stop()


def _rq_workers(stack):
    """The rq worker processes (not the shells or keepers that run them, nor the scheduler
    children they fork, which have the same command line)."""
    import psutil

    running = []
    for process in stack.process_tree():
        try:
            command = process.cmdline()
        except psutil.Error:  # gone, or a zombie, since the tree was listed
            continue
        if "--worker-class" in command and "-c" not in command and "devtools.respawn" not in command:
            running.append(process)
    pids = {p.pid for p in running}
    return [p for p in running if p.ppid() not in pids]


def _health(base):
    try:
        return requests.get(f"{base}/api/system/health", timeout=5)
    except requests.RequestException:
        return None


def test_one_process_exiting_does_not_take_make_run_down(tmp_path):
    """The review: a worker exited (rc=1) and honcho stopped web and cron with it. Under
    `make run` each process is started again when it exits; the others keep serving."""
    import psutil

    ports = {"web": free_port(), "mongo": free_port(), "redis": free_port()}
    base = f"http://127.0.0.1:{ports['web']}"
    stack = start_stack(tmp_path, ports)
    try:
        stack.wait_healthy(timeout=90)
        [worker] = _rq_workers(stack)
        worker.kill()  # SIGKILL, as an out-of-memory kill would
        killed_at = time.time()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            # The web process never stopped answering...
            assert requests.get(f"{base}/api/docs", timeout=5).status_code == 200
            # ...and a new worker comes up in its place.
            fresh = [w for w in _rq_workers(stack) if w.create_time() > killed_at]
            answer = _health(base)
            if fresh and answer is not None and answer.status_code == 200:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no worker came back:\n" + stack.log("stack")[-3000:])
        assert stack.processes["stack"].poll() is None
        assert "starting it again" in stack.log("stack")

        [web] = [p for p in stack.process_tree() if p.cmdline()[-1:] == ["wsgi.py"] and "-c" not in p.cmdline()]
        web.kill()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_health(base) is not None and _health(base).status_code == 200):
            time.sleep(0.5)
        assert _health(base).status_code == 200, "the web process came back"
        assert psutil.pid_exists(stack.processes["stack"].pid)
    finally:
        stack.stop()
    assert not any(port_open(p) for p in ports.values()), "a process outlived Ctrl-C"


def test_after_ctrl_c_no_stale_worker_is_counted(tmp_path):
    """The review: after Ctrl-C of `make run`, health reported 2 workers for ~8 minutes. The
    workers sign off before Redis stops, and health counts only workers that beat lately."""
    ports = {"web": free_port(), "mongo": free_port(), "redis": free_port()}
    stack = start_stack(tmp_path, ports)
    try:
        stack.wait_healthy(timeout=90)
    finally:
        stack.stop()  # Ctrl-C

    stack = start_stack(tmp_path, ports)
    try:
        health = stack.wait_healthy(timeout=90)
        assert health["components"]["workers"]["count"] == 1, health
        time.sleep(2)
        assert _health(f"http://127.0.0.1:{ports['web']}").json()["components"]["workers"]["count"] == 1
    finally:
        stack.stop()
