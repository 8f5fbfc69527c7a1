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
afterwards: every acknowledged write must be there). Prints a table and, last, a JSON summary;
saves bench/results/api.json and the plot docs/img/api_latency.png.

The clients are threads with one requests.Session each, not locust: locust would bring gevent
(and geventhttpclient, pyzmq) into the shared virtualenv beside the web process's eventlet, and
needs its monkey-patching before anything else is imported; a closed-loop thread pool measures
the same things with no new dependency. The clients share the machine (and its 2 cores) with
the server, which the numbers include.

    python -m bench.api [--clients 16] [--seconds 25] [--scenarios ingest analytics mixed]
"""
import argparse
import json
import platform
import sys
import threading
import time
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
        users.append({"token": token, "session_id": session.json()["id"]})
    return users


def ingest(user):
    return "POST", "/api/readings", {"session_id": user["session_id"], "probabilities": PROBABILITIES}, 201


def analytics_requests(user):
    sid = user["session_id"]
    return [("GET", "/api/readings/trends?hours=24&bucket=hour", None, 200),
            ("GET", "/api/readings/distribution?hours=24", None, 200),
            ("GET", f"/api/sessions/{sid}/analytics", None, 200),
            ("GET", f"/api/sessions/{sid}/insights", None, 200)]


def next_request(scenario, user, n):
    if scenario == "ingest" or (scenario == "mixed" and n % 2 == 0):
        return ingest(user)
    reads = analytics_requests(user)
    return reads[(n // (2 if scenario == "mixed" else 1)) % len(reads)]


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
            mine_lat.append((time.perf_counter() - started) * 1000)
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


def count_found(mongo_uri, ids):
    """How many of the acknowledged ids are stored. One scan of every stored id: the embedded
    MongoDB-wire server evaluates a large `$in` far more slowly (1,000 ids timed out)."""
    readings = pymongo.MongoClient(mongo_uri).get_default_database().readings
    stored = {doc["_id"] for doc in readings.find({}, {"_id": 1})}
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=25)
    parser.add_argument("--scenarios", nargs="+", default=["ingest", "analytics", "mixed"],
                        choices=["ingest", "analytics", "mixed"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)

    stack = bench_stack(1, "api")
    results = []
    try:
        stack.wait_healthy(timeout=180)
        users = sign_up(stack.base_url, USERS)
        # The analytics read something: a few readings per session before any scenario.
        run_scenario(stack.base_url, users, "ingest", USERS, 2)
        for scenario in args.scenarios:
            latencies, errors, acknowledged, elapsed = run_scenario(stack.base_url, users, scenario,
                                                                    args.clients, args.seconds)
            lat = np.array(latencies) if latencies else np.array([np.nan])
            results.append({
                "scenario": scenario, "clients": args.clients, "seconds": round(elapsed, 1),
                "requests": len(latencies), "errors": len(errors),
                "error_kinds": {str(k): errors.count(k) for k in sorted(set(map(str, errors)))},
                "rps": round(len(latencies) / elapsed, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 1),
                "p99_ms": round(float(np.percentile(lat, 99)), 1),
                "acknowledged_writes": len(acknowledged),
                "writes_found": count_found(stack.mongo_uri, acknowledged),
            })
    finally:
        stack.stop()

    header = (f"{'scenario':<10} {'requests':>8} {'errors':>6} {'rps':>7} {'p50_ms':>7} {'p99_ms':>7} "
              f"{'acked':>6} {'found':>6}")
    print(header)
    for r in results:
        print(f"{r['scenario']:<10} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['acknowledged_writes']:>6} {r['writes_found']:>6}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.plot)
    lost = sum(r["acknowledged_writes"] - r["writes_found"] for r in results)
    output = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(json.dumps({"results": str(output),
                      "plot": str(args.plot), "clients": args.clients, "versions": versions(), "writes_lost": lost,
                      "scenarios": {r["scenario"]: {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
                                    for r in results}}))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
