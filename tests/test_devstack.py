"""`make run` with no external services: the embedded stack comes up, works, stops on Ctrl-C,
and keeps its data across a restart."""
import requests

from devtools.stack import DevStack, free_port

MAKE_RUN = ["make", "--no-print-directory", "run"]


def start_stack(tmp_path, ports):
    return DevStack(var_dir=tmp_path / "var", command=MAKE_RUN, PORT=ports["web"],
                    EMBEDDED_MONGO_PORT=ports["mongo"], EMBEDDED_REDIS_PORT=ports["redis"])


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
    finally:
        stack.stop()  # Ctrl-C
    output = stack.log("stack")
    assert f"{base}/api/docs" in output
    assert not any(port_open(p) for p in ports.values()), "a process outlived Ctrl-C"

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
