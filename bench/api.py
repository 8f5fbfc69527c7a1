"""make bench-api: the REST API under concurrent clients.

Starts the stack as `make run` does (python -m devtools.devstack: embedded MongoDB-wire on the memory
engine, embedded Redis, one worker) in a fresh var dir on free ports, signs up USERS users with a
session each, then runs each scenario for --seconds with --clients concurrent clients, each
sending its next request as soon as the last one is answered (closed loop, keep-alive):

    ingest     POST /api/readings into the client's session
    analytics  GET /api/readings/trends, /api/readings/distribution,
               /api/sessions/<id>/analytics and /api/sessions/<id>/insights, in turn
    mixed      half ingest, half analytics

Per scenario: requests, errors (anything but the expected 200/201, or no answer), rps, p50_ms,
p99_ms, acknowledged_writes (201s) and writes_found (those readings' ids counted in MongoDB
afterwards: every acknowledged write must be there), the CPU time the stack's processes spent per
request (server_cpu_ms_per_request: comparable across machines and loads, unlike latencies) and
the load average before and after, and p50 and p99 by kind of request (by_request). Prints a
table and, last, a JSON summary; saves
bench/results/api.json and the plot docs/img/api_latency.png.

With --readings N it measures analytics as data grows: N readings are first bulk-loaded straight
into MongoDB (insert_many, LOAD_BATCH at a time), spread over the USERS users, the last 30 days
and sessions of 5 to 25 minutes (one reading a second, one in twenty silent); each batch is added
to the rollups by the reading store (app/readings/store.py add_bulk_loaded), as the stack's own
writes are, so nothing is read back (--time-rebuild times `flask db rebuild-rollups` over them
as well). The first view of each analysed session (its series built
from the readings, its summary computed) is timed apart as cold_session_ms, then the scenarios
run, analytics asking also for 30-day trends and distribution and for an old session's analytics
and insights. Results are added to bench/results/api_scale.json (one entry per engine and N,
replacing an earlier one) and plotted in docs/img/api_scale.png.

The clients are threads with one requests.Session each, not locust: locust would bring gevent
(and geventhttpclient, pyzmq) into the shared virtualenv beside the web process's eventlet, and
needs its monkey-patching before anything else is imported; a closed-loop thread pool measures
the same things with no new dependency. The clients share the machine (and its 2 cores) with
the server, which the numbers include.

    python -m bench.api [--clients 16] [--seconds 25] [--scenarios ingest analytics mixed]
                        [--engine memory|sqlite] [--readings N [--time-rebuild]]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pymongo
import requests
from bson import ObjectId
from tqdm import tqdm

from bench import bench_stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api.json"
PLOT = ROOT / "docs" / "img" / "api_latency.png"
SCALE_RESULTS = ROOT / "bench" / "results" / "api_scale.json"
SCALE_PLOT = ROOT / "docs" / "img" / "api_scale.png"
DAYS = 30
LOAD_BATCH = 1000  # documents per insert_many: the wire server hands each to its engine as one batch
ANALYSED_SESSIONS = 4  # per user: the analytics scenario reads the latest few pre-loaded sessions
USERS = 8
PASSWORD = "benchmark password"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}


def sign_up(base_url, n):
    """n users, each with an access token and a session of their own."""
    users = []
    for i in range(n):
        answer = requests.post(f"{base_url}/api/auth/register", timeout=30,
                               json={"email": f"bench-api-{i}@example.com", "password": PASSWORD})
        answer.raise_for_status()
        token = answer.json()["access_token"]
        session = requests.post(f"{base_url}/api/sessions", json={"name": f"bench {i}"}, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
        session.raise_for_status()
        users.append({"token": token, "session_id": session.json()["id"], "email": f"bench-api-{i}@example.com"})
    return users


def sign_in_again(base_url, users):
    """Fresh access tokens (a long pre-load outlives the first ones)."""
    for user in users:
        answer = requests.post(f"{base_url}/api/auth/login", timeout=30,
                               json={"email": user["email"], "password": PASSWORD})
        answer.raise_for_status()
        user["token"] = answer.json()["access_token"]


def _prediction_pool(rng, size=512):
    from ml.inference import reading

    return [reading(rng.dirichlet(np.full(8, 0.5))) for _ in range(size)]


def _loader_app(stack):
    """The app, without a Socket.IO server, on the stack's MongoDB and Redis: the pre-load adds
    what it inserts to the rollups through the reading store, as the stack's own writes do."""
    from app import create_app

    return create_app("testing", serve_socketio=False, MONGO_URI=stack.mongo_uri, REDIS_URL=stack.redis_url)


def _reading_docs(rng, pool, owner, sid, start, size):
    for k in range(size):
        silent = rng.random() < 0.05
        p = pool[int(rng.integers(len(pool)))]
        doc = {"_id": ObjectId(), "owner": owner, "session": sid, "source": "stream",
               "timestamp": start + timedelta(seconds=k), "window_start": float(max(0, k - 2)),
               "window_end": float(k + 1), "window_key": f"{sid}:{k}", "silence": silent,
               "dominant": "silence" if silent else p["dominant"], "model_version": "bench",
               "created_at": start + timedelta(seconds=k)}
        if not silent:
            doc.update(probabilities=p["probabilities"], uncertain=p["uncertain"],
                       **{name: p[name] for name in ("confidence", "valence", "arousal", "intensity")})
        yield doc


def preload(stack, users, total, seed=7, time_rebuild=False):
    """Bulk-load `total` readings into MongoDB (see the module's docstring); adds each user's
    `old_sessions` (the latest ANALYSED_SESSIONS) and returns the load's figures."""
    from app.readings.store import add_bulk_loaded

    rng = np.random.default_rng(seed)
    pool = _prediction_pool(rng)
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    now = datetime.now(UTC)
    started, sessions_made, loaded, rollup_s = time.perf_counter(), 0, 0, 0.0
    progress = tqdm(total=total, desc="pre-load", unit="reading", leave=False)
    with _loader_app(stack).app_context():

        def flush(batch):
            nonlocal loaded, rollup_s
            db.readings.insert_many(batch, ordered=False)
            begun = time.perf_counter()
            add_bulk_loaded(batch)
            rollup_s += time.perf_counter() - begun
            loaded += len(batch)
            progress.update(len(batch))

        for u, user in enumerate(users):
            owner = db.users.find_one({"email": user["email"]})["_id"]
            share = total // len(users) + (1 if u < total % len(users) else 0)
            sizes = []
            while sum(sizes) < share:
                sizes.append(min(int(rng.integers(300, 1501)), share - sum(sizes)))
            starts = sorted(now - timedelta(seconds=float(s)) for s in rng.uniform(3600, DAYS * 86400, len(sizes)))
            sessions = [{"_id": ObjectId(), "owner": owner, "name": "pre-loaded", "source": "stream",
                         "status": "ended", "started_at": start, "ended_at": start + timedelta(seconds=size + 3),
                         "audio_format": {}} for size, start in zip(sizes, starts)]
            for first in range(0, len(sessions), LOAD_BATCH):
                db.sessions.insert_many(sessions[first:first + LOAD_BATCH])
            sessions_made += len(sessions)
            batch = []
            for size, session in zip(sizes, sessions):
                for doc in _reading_docs(rng, pool, owner, session["_id"], session["started_at"], size):
                    batch.append(doc)
                    if len(batch) == LOAD_BATCH:
                        flush(batch)
                        batch = []
            if batch:
                flush(batch)
            user["old_sessions"] = [str(s["_id"]) for s in sessions[-ANALYSED_SESSIONS:]]
    progress.close()
    load_s = time.perf_counter() - started
    figures = {"readings": loaded, "sessions": sessions_made, "load_s": round(load_s, 1),
               "load_readings_per_s": round(loaded / load_s), "rollups_s": round(rollup_s, 1),
               "redis_mb_after_load": redis_mb(stack)}
    if time_rebuild:
        started = time.perf_counter()
        env = {**os.environ, "APP_ENV": "development", "MONGO_URI": stack.mongo_uri, "REDIS_URL": stack.redis_url,
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        subprocess.run([sys.executable, "-m", "flask", "--app", "app:create_app", "db", "rebuild-rollups"], env=env,
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        figures["rebuild_rollups_s"] = round(time.perf_counter() - started, 1)
    return figures


def redis_mb(stack):
    import redis

    return round(redis.Redis.from_url(stack.redis_url).info("memory")["used_memory"] / 2**20, 1)


def cold_views(base_url, users):
    """Milliseconds of each analysed session's first analytics request (series and summary built)."""
    times = []
    for user in users:
        for sid in user["old_sessions"]:
            started = time.perf_counter()
            answer = requests.get(f"{base_url}/api/sessions/{sid}/analytics", timeout=120,
                                  headers={"Authorization": f"Bearer {user['token']}"})
            answer.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def ingest(user):
    return "POST", "/api/readings", {"session_id": user["session_id"], "probabilities": PROBABILITIES}, 201


def analytics_requests(user, n):
    sid = user["session_id"]
    reads = [("GET", "/api/readings/trends?hours=24&bucket=hour", None, 200),
             ("GET", "/api/readings/distribution?hours=24", None, 200),
             ("GET", f"/api/sessions/{sid}/analytics", None, 200),
             ("GET", f"/api/sessions/{sid}/insights", None, 200)]
    if user.get("old_sessions"):
        old = user["old_sessions"][n % len(user["old_sessions"])]
        reads += [("GET", "/api/readings/trends?hours=720&bucket=day", None, 200),
                  ("GET", "/api/readings/distribution?hours=720", None, 200),
                  ("GET", f"/api/sessions/{old}/analytics", None, 200),
                  ("GET", f"/api/sessions/{old}/insights", None, 200)]
    return reads


def next_request(scenario, user, n):
    if scenario == "ingest" or (scenario == "mixed" and n % 2 == 0):
        return ingest(user)
    k = n // (2 if scenario == "mixed" else 1)
    reads = analytics_requests(user, k // 8)
    return reads[k % len(reads)]


def cpu_by_process(processes):
    """CPU seconds so far of each process, by a short name (web, worker, mongo-wire, redis...)."""
    seconds = {}
    for proc in processes:
        try:
            times, command = proc.cpu_times(), " ".join(proc.cmdline())
        except Exception:  # noqa: BLE001 - a process that ended meanwhile counts for nothing more
            continue
        name = next((label for key, label in (("mongo_wire", "mongo-wire"), ("redis-server", "redis"),
                                               ("wsgi.py", "web"), ("rq worker", "worker"), ("rq cron", "cron"))
                     if key in command), "other")
        seconds[name] = seconds.get(name, 0.0) + times.user + times.system
    return seconds


def kind_of(method, path, user):
    """The request's kind, for latencies by kind: its path with the session ids named."""
    path = path.replace(user["session_id"], "<session>")
    return f"{method} {re.sub('[0-9a-f]{24}', '<old session>', path)}"


def run_scenario(base_url, users, scenario, clients, seconds):
    latencies, errors, acknowledged = [], [], []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    progress = tqdm(total=seconds, desc=f"{scenario:<9}", unit="s", leave=False,
                    bar_format="{desc} {bar} {n:.0f}/{total:.0f} s {postfix}")

    def client(c):
        user = users[c % len(users)]
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {user['token']}"
        mine_lat, mine_err, mine_ack, n = [], [], [], c
        while time.monotonic() < deadline:
            method, path, body, expected = next_request(scenario, user, n)
            n += 1
            started = time.perf_counter()
            try:
                answer = http.request(method, base_url + path, json=body, timeout=30)
                status = answer.status_code
            except requests.RequestException as error:
                status, answer = type(error).__name__, None
            mine_lat.append((kind_of(method, path, user), (time.perf_counter() - started) * 1000))
            if status != expected:
                mine_err.append(status)
            elif method == "POST":
                mine_ack.append(answer.json()["id"])
        with lock:
            latencies.extend(mine_lat)
            errors.extend(mine_err)
            acknowledged.extend(mine_ack)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        progress.n = min(seconds, time.monotonic() - started)
        progress.refresh()
    elapsed = time.monotonic() - started
    progress.close()
    return latencies, errors, acknowledged, elapsed


def count_found(mongo_uri, ids, session_ids):
    """How many of the acknowledged ids are stored, read back from the sessions they were posted
    into (one indexed equality query each): the embedded MongoDB-wire server evaluates a large
    `$in` far too slowly (1,000 ids timed out), and a scan of every stored id was cancelled at a
    million readings. A write stored anywhere else counts as lost."""
    if not ids:
        return 0
    readings = pymongo.MongoClient(mongo_uri).get_default_database().readings
    stored = {doc["_id"] for sid in session_ids for doc in readings.find({"session": ObjectId(sid)}, {"_id": 1})}
    return sum(ObjectId(i) in stored for i in ids)


def versions():
    from importlib.metadata import version

    names = ("flask", "flask-socketio", "eventlet", "rq", "redis", "mongoengine", "pymongo", "mongoeco")
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["scenario"] for r in results]
    x = np.arange(len(names))
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(10, 4))
    lat.bar(x - 0.2, [r["p50_ms"] for r in results], 0.4, label="p50")
    lat.bar(x + 0.2, [r["p99_ms"] for r in results], 0.4, label="p99")
    lat.set_xticks(x, names)
    lat.set_ylabel("latency (ms)")
    lat.set_title(f"REST latency, {results[0]['clients']} concurrent clients")
    lat.legend()
    thr.bar(x, [r["rps"] for r in results], 0.5, color="tab:green")
    thr.set_xticks(x, names)
    thr.set_ylabel("requests per second")
    thr.set_title("throughput")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def summarise(scenario, clients, run, cpu_spent, client_cpu_s, load_before, stack, session_ids):
    timed, errors, acknowledged, elapsed = run
    latencies = [ms for _, ms in timed]
    lat = np.array(latencies) if latencies else np.array([np.nan])
    by_kind = {}
    for kind, ms in timed:
        by_kind.setdefault(kind, []).append(ms)
    requests_made = max(1, len(latencies))
    cpu_s = sum(cpu_spent.values())
    return {
        "scenario": scenario, "clients": clients, "seconds": round(elapsed, 1),
        "requests": len(latencies), "errors": len(errors),
        "error_kinds": {str(k): errors.count(k) for k in sorted(set(map(str, errors)))},
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "server_cpu_ms_per_request": round(cpu_s * 1000 / requests_made, 2),
        "server_cpu_ms_per_request_by_process": {name: round(seconds * 1000 / requests_made, 2)
                                                 for name, seconds in sorted(cpu_spent.items())},
        "client_cpu_ms_per_request": round(client_cpu_s * 1000 / requests_made, 2),
        "by_request": {kind: {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                              "p99_ms": round(float(np.percentile(ms, 99)), 1)}
                       for kind, ms in sorted(by_kind.items())},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "acknowledged_writes": len(acknowledged),
        "writes_found": count_found(stack.mongo_uri, acknowledged, session_ids),
    }


def save_scale(entry, path):
    """Add this run to the results file, replacing an earlier run of the same engine and size."""
    runs = json.loads(path.read_text()) if path.exists() else []
    runs = [r for r in runs if (r["engine"], r["readings"]) != (entry["engine"], entry["readings"])] + [entry]
    runs.sort(key=lambda r: (r["engine"], r["readings"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=2) + "\n")
    return runs


def plot_scale(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, scenario in zip(axes, ("analytics", "mixed")):
        for engine, marker in (("sqlite", "o"), ("memory", "s")):
            mine = [(r["readings"], s) for r in runs if r["engine"] == engine
                    for s in r["scenarios"] if s["scenario"] == scenario]
            if not mine:
                continue
            x = [n for n, _ in mine]
            ax.plot(x, [s["p50_ms"] for _, s in mine], marker=marker, label=f"{engine} p50")
            ax.plot(x, [s["p99_ms"] for _, s in mine], marker=marker, linestyle="--", label=f"{engine} p99")
        ax.axhline(100 if scenario == "analytics" else 150, color="grey", linewidth=0.8, label="p99 target")
        ax.set_xscale("log")
        ax.set_yscale("log")  # one stalled run is 100x the others
        ax.set_xlabel("readings stored")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(f"{scenario}, {runs[0]['clients']} clients")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=25)
    parser.add_argument("--scenarios", nargs="+", default=None, choices=["ingest", "analytics", "mixed"],
                        help="default: ingest analytics mixed; with --readings, analytics mixed")
    parser.add_argument("--engine", choices=["memory", "sqlite"], default="memory",
                        help="the embedded MongoDB-wire server's engine (sqlite is `make run`'s default)")
    parser.add_argument("--readings", type=int, default=0, help="bulk-load this many readings first")
    parser.add_argument("--time-rebuild", action="store_true",
                        help="with --readings, also time `flask db rebuild-rollups` over the loaded readings")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    scale = args.readings > 0
    scenarios = args.scenarios or (["analytics", "mixed"] if scale else ["ingest", "analytics", "mixed"])
    output = args.output or (SCALE_RESULTS if scale else RESULTS)
    plot_path = args.plot or (SCALE_PLOT if scale else PLOT)

    stack = bench_stack(1, "api", engine=args.engine)
    stack.redis_url = f"redis://127.0.0.1:{stack.env['EMBEDDED_REDIS_PORT']}/0"
    results, preloaded = [], None
    try:
        stack.wait_healthy(timeout=180)
        users = sign_up(stack.base_url, USERS)
        # The analytics read something: a few readings per session before any scenario.
        run_scenario(stack.base_url, users, "ingest", USERS, 2)
        if scale:
            preloaded = preload(stack, users, args.readings, time_rebuild=args.time_rebuild)
            sign_in_again(stack.base_url, users)
            cold = cold_views(stack.base_url, users)
            preloaded["cold_session_ms"] = {"p50": round(float(np.percentile(cold, 50)), 1),
                                            "max": round(max(cold), 1), "sessions": len(cold)}
            preloaded["redis_mb_after_cold_views"] = redis_mb(stack)
        processes = stack.process_tree()
        for scenario in scenarios:
            load_before = os.getloadavg()
            cpu, client_cpu = cpu_by_process(processes), time.process_time()
            run = run_scenario(stack.base_url, users, scenario, args.clients, args.seconds)
            spent = {name: seconds - cpu.get(name, 0.0) for name, seconds in cpu_by_process(processes).items()}
            results.append(summarise(scenario, args.clients, run, spent, time.process_time() - client_cpu,
                                     load_before, stack, [user["session_id"] for user in users]))
    finally:
        stack.stop()

    header = (f"{'scenario':<10} {'requests':>8} {'errors':>6} {'rps':>7} {'p50_ms':>7} {'p99_ms':>7} "
              f"{'cpu_ms':>7} {'acked':>6} {'found':>6}")
    print(header)
    for r in results:
        print(f"{r['scenario']:<10} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['server_cpu_ms_per_request']:>7} {r['acknowledged_writes']:>6} "
              f"{r['writes_found']:>6}")
        for kind, figures in r["by_request"].items():
            print(f"  {kind:<44} {figures['requests']:>7} {figures['p50_ms']:>7} {figures['p99_ms']:>7}")
    if scale:
        entry = {"engine": args.engine, "readings": args.readings, "clients": args.clients, "users": USERS,
                 "days": DAYS, "cpu_count": os.cpu_count(), "preload": preloaded, "scenarios": results,
                 "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions()}
        print(json.dumps(preloaded))
        plot_scale(save_scale(entry, output), plot_path)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, plot_path)
    lost = sum(r["acknowledged_writes"] - r["writes_found"] for r in results)
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    print(json.dumps({"results": str(shown), "engine": args.engine, "readings": args.readings,
                      "plot": str(plot_path), "clients": args.clients, "versions": versions(), "writes_lost": lost,
                      "scenarios": {r["scenario"]: {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "errors",
                                                                      "server_cpu_ms_per_request")}
                                    for r in results}}))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
