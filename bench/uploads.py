"""make bench-uploads: does an upload that is hard to read slow down everyone else?

Starts the stack as `make run` does (bench.bench_stack: embedded servers, one worker) and
measures another user's `GET /api/sessions`, one request after another, in two phases:

    quiet        nobody uploads, for --seconds
    under load   --rounds times: 3 clients post the outside review's MOV (one 16000 x 16000 PNG
                 video frame, 768 MB as pixels, and 4 s of AAC, about 0.8 MB) at the same
                 moment; the GETs sent until the last of the 3 is answered count; then a pause
                 of --pause seconds (the worker analyses them meanwhile, as it would)

Per phase: requests, errors, p50_ms, p99_ms, max_ms of the GETs; under load also the uploads
(their statuses, p50/p99), the web process's CPU seconds per upload and its peak RSS. Target
(issue 16): p99 of the GETs under load < 200 ms. Prints a JSON summary and saves
bench/results/uploads.json.

    python -m bench.uploads [--seconds 10] [--rounds 20] [--pause 1]
"""
import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests

from bench import bench_stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "uploads.json"
PASSWORD = "benchmark password"
UPLOADERS = 3


def signed_in(base_url, email):
    answer = requests.post(f"{base_url}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
    answer.raise_for_status()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


def percentiles(values):
    values = np.array(values) if values else np.array([np.nan])
    return {"p50_ms": round(float(np.percentile(values, 50)), 1), "p99_ms": round(float(np.percentile(values, 99)), 1),
            "max_ms": round(float(values.max()), 1)}


def poll_sessions(base_url, http, stop, samples):
    """GET /api/sessions one after another until `stop`; samples: (start, ms, status)."""
    while not stop.is_set():
        started, clock = time.perf_counter(), time.monotonic()
        try:
            status = http.get(f"{base_url}/api/sessions", timeout=60).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        samples.append((clock, (time.perf_counter() - started) * 1000, status))


def post(base_url, http, data, answers):
    started = time.perf_counter()
    try:
        status = http.post(f"{base_url}/api/analyze", files={"file": ("review.mov", data, "video/quicktime")},
                           timeout=120).status_code
    except requests.RequestException as error:
        status = type(error).__name__
    answers.append((status, (time.perf_counter() - started) * 1000))


def web_process(stack):
    """The web process itself, not the shell or the restarting keeper that run it."""
    return next(p for p in stack.process_tree() if p.cmdline()[-1:] == ["wsgi.py"] and "-c" not in p.cmdline())


def summarise(samples):
    latencies = [ms for _, ms, _ in samples]
    return {"requests": len(samples), "errors": sum(status != 200 for _, _, status in samples),
            **percentiles(latencies)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests"))
    from audio_fixtures import mov_with_huge_png

    data = mov_with_huge_png(16000)
    stack = bench_stack(1, "uploads")
    samples, windows, answers = [], [], []
    try:
        stack.wait_healthy(timeout=180)
        poller = signed_in(stack.base_url, "bench-poller@example.com")
        uploaders = [signed_in(stack.base_url, f"bench-uploader-{i}@example.com") for i in range(UPLOADERS)]
        web = web_process(stack)
        stop = threading.Event()
        polling = threading.Thread(target=poll_sessions, args=(stack.base_url, poller, stop, samples))
        polling.start()
        time.sleep(args.seconds)
        quiet_end = time.monotonic()

        peak = [web.memory_info().rss]
        cpu_before = sum(web.cpu_times()[:2])
        for _ in range(args.rounds):
            posts = [threading.Thread(target=post, args=(stack.base_url, http, data, answers)) for http in uploaders]
            begun = time.monotonic()
            for thread in posts:
                thread.start()
            while any(thread.is_alive() for thread in posts):
                peak.append(web.memory_info().rss)
                time.sleep(0.02)
            windows.append((begun, time.monotonic()))
            time.sleep(args.pause)
        cpu = sum(web.cpu_times()[:2]) - cpu_before
        stop.set()
        polling.join()
    finally:
        stack.stop()

    quiet = [s for s in samples if s[0] < quiet_end]
    loaded = [s for s in samples if any(begun <= s[0] <= end for begun, end in windows)]
    statuses = [str(status) for status, _ in answers]
    summary = {
        "file_bytes": len(data), "uploaders": UPLOADERS, "rounds": args.rounds, "quiet_seconds": args.seconds,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": psutil.cpu_count(),
        "quiet": summarise(quiet),
        "under_load": summarise(loaded),
        "uploads": {"answered": len(answers), "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
                    **percentiles([ms for _, ms in answers]),
                    "web_cpu_s_per_upload": round(cpu / max(1, len(answers)), 4),
                    "web_rss_mb": {"start": round(peak[0] / 2**20), "peak": round(max(peak) / 2**20)}},
        "target_p99_ms": 200,
    }
    print(json.dumps(summary, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
