"""make bench-stream: live-streaming latency under N concurrent real-time streams.

Starts the stack as `make run` does (devtools.devstack) with 2 workers and the embedded servers
(--web N: as `make run-cluster` does, HAProxy in front of N web processes),
then for each N runs N Socket.IO clients that stream speech at real-time pace in 1 s chunks (--chunk-ms),
each from its own point in the speech and starting at a random offset within the first second
(--aligned: all at once on the same words, the worst case).
Latency of a window = the client's receipt of its `emotion` event minus the server's arrival
time of the chunk that completed the window (same machine, same clock). Prints a table,
saves bench/results/stream.json and the plot docs/img/stream_latency.png.

--flood: one user floods 30 streams at 10x real time while 50 other users stream in real time;
the others' latency and drops are what counts (issue 16: one user's flood costs that user);
saved to bench/results/stream_flood.json.

The MongoDB-wire server runs on its memory engine (what is measured is the app); --engine sqlite
runs it on `make run`'s default store instead, saved to stream<...>_sqlite.json.

    python -m bench.stream [--streams 1 10 50 100 150 200] [--seconds 20] [--aligned | --flood] [--web N]
                           [--engine sqlite]
"""
import argparse
import gc
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import socketio
import soundfile
from tqdm import tqdm

from audio import SAMPLE_RATE
from audio.pcm import to_s16
from bench import bench_stack
from devtools.cluster import served, wait_all_up
from ml.inference import is_silent
from mood_mirror.client import CHUNK_MS, ApiClientError, MoodMirrorClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "stream.json"
PLOT = ROOT / "docs" / "img" / "stream_latency.png"
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"
FORMAT = {"encoding": "s16le", "sample_rate": SAMPLE_RATE, "channels": 1}
TARGET_P99_MS = 150
# The stack's processes by role, told apart by their command lines (first match wins).
ROLES = (("web", "wsgi.py"), ("worker", "rq worker"), ("cron", "rq cron"), ("mongo_wire", "devtools.mongo_wire"),
         ("redis", "redis-server"), ("haproxy", "haproxy"), ("supervisor", "devtools.devstack"),
         ("supervisor", "devtools.cluster"))


def speech(seconds):
    """Real speech when the corpus is there: clips from across the actors that the model's
    silence gate hears as speech (a few actors recorded so quietly that it does not), joined;
    else voiced synthetic audio. Every window then costs a model call, as a talking user's does."""
    clips = sorted((RAVDESS / "audio").glob("*/*.flac"))[::29]
    parts = [audio for audio in (soundfile.read(c, dtype="float32")[0] for c in clips) if not is_silent(audio)]
    if parts:
        audio = np.concatenate(parts)
    else:
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        audio = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return to_s16(np.resize(audio, int(seconds * SAMPLE_RATE)))


def flood(live, pcm, chunk_ms, speed, until, sent):
    """Send pcm (round and round) at `speed` times real time until the event `until` is set;
    sent[0] counts the seconds of audio sent. Stops early if the connection is lost."""
    step = 16 * chunk_ms
    started, i = time.monotonic(), 0
    while not until.is_set():
        first = (i * step) % (pcm.size - step)
        delay = started + i * chunk_ms / 1000 / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            live.send(pcm[first:first + step].tobytes())
        except socketio.exceptions.SocketIOError:
            return
        sent[0] += chunk_ms / 1000
        i += 1


def measure_flood(stack, pcm, chunk_ms, others=50, flood_streams=30, speed=10.0):
    """`others` users stream in real time while one more user floods `flood_streams` streams at
    `speed` times real time, from before the others start until they are done."""
    flooder = MoodMirrorClient(stack.base_url)
    flooder.register("bench-flooder@example.com", "benchmark password")
    clients = []
    for i in range(others):
        client = MoodMirrorClient(stack.base_url)
        client.register(f"bench-flood-other-{i}@example.com", "benchmark password")
        clients.append(client)
    floods = [flooder.live_stream(wait_timeout=60) for _ in range(flood_streams)]
    for live in floods:
        live.connect()
        live.start(FORMAT)
    procs = stack.process_tree()
    for p in procs:
        p.cpu_percent(None)
    cpu_before = cpu_seconds(procs)
    done = threading.Event()
    seconds_sent = [[0.0] for _ in floods]
    threads = [threading.Thread(target=flood, args=(live, np.roll(pcm, -4000 * k), chunk_ms, speed, done, seconds),
                                daemon=True) for k, (live, seconds) in enumerate(zip(floods, seconds_sent))]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the flood is on before the others start
    started = time.monotonic()
    latencies, sent, dropped, silent, _, _, _ = run_streams(stack, clients, pcm, chunk_ms)
    elapsed = time.monotonic() - started
    cpu_after = cpu_seconds(procs)  # before the flood's connections close, with what they still had queued
    cpu = sum(p.cpu_percent(None) for p in procs if p.is_running())
    flood_analysed = sum(len(live.emotions) for live in floods)
    done.set()
    for thread in threads:
        thread.join()
    # The flood's connections are closed, not stopped: what the server has not read of them yet
    # (it reads a user's audio at STREAM_USER_AUDIO_SPEED) would hold `stop` back for minutes.
    lost = sum(not live.sio.connected for live in floods)
    flood_dropped = sum(live.dropped() for live in floods)
    for live in floods:
        live.close()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "streams": others,
        "start": "staggered",
        # what the flooder sent (its client queues what the server does not read yet) and got
        "flood": {"streams": flood_streams, "speed": speed,
                  "audio_seconds_sent": round(sum(s[0] for s in seconds_sent), 1),
                  "windows_analysed": flood_analysed, "windows_dropped": flood_dropped, "connections_lost": lost},
        "audio_seconds_per_stream": round(pcm.size / SAMPLE_RATE, 2),
        "windows_sent": sent,
        "windows_received": len(latencies),
        "windows_dropped": dropped,
        "windows_silent": silent,
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(np.max(lat)), 1),
        "server_cpu_percent": round(cpu, 1),
        # over every window analysed, the flood's included (its analysed windows are counted
        # when their `emotion` events have come, which the others' wait gave them time for)
        "cpu_ms_per_window": cpu_ms_per_window(cpu_before, cpu_after, len(latencies) + flood_analysed),
        "chunk_ms": chunk_ms,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(elapsed, 1),
    }


def run_streams(stack, clients, pcm, chunk_ms, aligned=False, on_streaming=None):
    """Stream speech from every client at once; returns latencies (ms), windows sent, dropped
    and silent, the windows' arrival times at the server, the environment responses the
    clients received and, per latency, whether its window was its stream's last (completed by
    the chunk right before the stream's `stop`). `on_streaming` is called as every client has
    connected and started, right before the first audio.

    People talk independently: by default each client starts at a random offset within the
    first hop (1 s), so windows complete spread over each second, and each says something
    else (the speech from its own random point on), so costs that depend on what is said
    (model calls, environment changes) spread as well. `aligned` starts them all together on
    the same words instead: a burst of N like windows each second, the worst case."""
    streams = [c.live_stream(wait_timeout=30) for c in clients]
    for live in streams:
        live.connect()
        live.start(FORMAT)
    summaries = [None] * len(streams)
    rng = np.random.default_rng(len(streams))
    offsets = np.zeros(len(streams)) if aligned else rng.uniform(0, 1, len(streams))
    chunk = 16 * chunk_ms
    shifts = [0] * len(streams) if aligned else chunk * rng.integers(0, pcm.size // chunk, len(streams))

    def stream(i):
        time.sleep(offsets[i])
        streams[i].stream_samples(np.roll(pcm, -shifts[i]), chunk_ms=chunk_ms, realtime=True)
        summaries[i] = streams[i].stop()

    # This process is the measuring instrument: a full collection of its heap (a hundred
    # clients' worth) stalled every client thread for up to 160 ms, and the late receipts
    # counted as server latency. Collections wait until the streams are done.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(len(streams))]
        if on_streaming is not None:
            on_streaming()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies, sent, dropped, silent, arrivals, environments, last = [], 0, 0, 0, [], 0, []
        deadline = time.monotonic() + 120  # for every stream together: a window still missing then is lost
        for live, summary in zip(streams, summaries):
            live.wait_for_emotions(summary["windows"], timeout=max(0.0, deadline - time.monotonic()))
            expected = summary["windows"] - live.dropped()
            sent += summary["windows"]
            dropped += live.dropped() + max(0, expected - len(live.emotions))
            latencies += [(live.received_at[e["window_index"]] - e["received_at"]) * 1000 for e in live.emotions]
            arrivals += [e["received_at"] for e in live.emotions]
            last += [e["window_index"] == summary["windows"] - 1 for e in live.emotions]
            environments += len(live.environments)
            silent += sum(e["silence"] for e in live.emotions)
            live.close()
    finally:
        gc.enable()
        gc.unfreeze()
    return latencies, sent, dropped, silent, arrivals, environments, last


def role(process):
    """Which of the stack's processes this is, by its command line."""
    command = " ".join(process.cmdline())
    for name, marker in ROLES:
        if marker in command:
            return name
    return "other"


def cpu_seconds(processes):
    """CPU seconds (user + system) used so far by each role's processes together."""
    totals = {}
    for process in processes:
        try:
            times = process.cpu_times()
            totals[role(process)] = totals.get(role(process), 0.0) + times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return totals


def cpu_ms_per_window(before, after, windows):
    """Stack CPU milliseconds per analysed window, per role and in all: the machine-independent
    figure (latencies depend on how loaded the host is; this much less)."""
    per_role = {name: round(1000 * (after.get(name, 0.0) - before.get(name, 0.0)) / max(windows, 1), 2)
                for name, _ in ROLES if name in after}
    return per_role | {"stack": round(sum(per_role.values()), 2)}


class SteadyState:
    """The stack's CPU while every stream is streaming, and the windows it analysed meanwhile.

    A session's connection, start and stop cost the stack CPU once (token checks, Socket.IO's
    handshake, the session's documents and summary), and a bench's streams last 20 s where a
    person's last minutes: counted over the whole run, those costs came to about a twentieth of
    a stream's start and stop per window. Per window in the steady state is what live capacity
    depends on; the whole run's figure and the CPU per stream started are reported beside it.
    From STEADY_FROM_S after the first audio (every stream has started within the first second
    and completed its first window at 3 s) until STEADY_UNTIL_END_S before the audio ends."""

    STEADY_FROM_S = 4.0
    STEADY_UNTIL_END_S = 1.5

    def __init__(self, procs, audio_seconds):
        self.procs, self.audio_seconds = procs, audio_seconds
        self.at_start = self.before = self.after = None
        self.since = self.until = None
        self._thread = None

    def streaming(self):
        """Called as the audio starts: samples the CPU then, and later at the interval's ends."""
        self.at_start = cpu_seconds(self.procs)
        started = time.time()
        self.since = started + self.STEADY_FROM_S
        self.until = started + self.audio_seconds - self.STEADY_UNTIL_END_S
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        time.sleep(max(0.0, self.since - time.time()))
        self.before = cpu_seconds(self.procs)
        time.sleep(max(0.0, self.until - time.time()))
        self.after = cpu_seconds(self.procs)

    def per_window(self, arrivals):
        """CPU ms per window over the interval: windows completed at the server within it."""
        self._thread.join()
        return cpu_ms_per_window(self.before, self.after,
                                 sum(self.since <= at < self.until for at in arrivals))

    def p99(self, latencies, arrivals):
        """p99 latency (ms) of the windows completed at the server within the interval: without
        the first windows and the last, when every stream starts, or stops, within one second."""
        steady = [ms for ms, at in zip(latencies, arrivals) if self.since <= at < self.until]
        return round(float(np.percentile(steady, 99)), 1) if steady else None

    def over_target(self, latencies, arrivals, last):
        """Where a run's tail lies: the windows slower than the target, how many completed at the
        server before the interval (as the streams start) and after it (as they stop), and how
        many were their stream's last (every bench stream stops within the same second, each right
        after the chunk that completes its last window, so its stop and that window coincide)."""
        slow = np.asarray(latencies, float) > TARGET_P99_MS
        at = np.asarray(arrivals, float)
        return {"windows_over_target": int(slow.sum()),
                "windows_over_target_at_start": int((slow & (at < self.since)).sum()),
                "windows_over_target_at_end": int((slow & (at >= self.until)).sum()),
                "windows_over_target_last_of_stream": int((slow & np.asarray(last, bool)).sum())}


def measure(stack, n, pcm, chunk_ms, aligned=False):
    balancer = stack.log_dir / "haproxy.sock"  # make run-cluster's: how it spread the clients
    spread_before = served(balancer) if balancer.exists() else {}
    clients = []
    for i in range(n):
        client = MoodMirrorClient(stack.base_url)
        client.register(f"bench-{n}-{i}@example.com", "benchmark password")
        clients.append(client)
    procs = stack.process_tree()
    for p in procs:
        p.cpu_percent(None)
    cpu_before = cpu_seconds(procs)
    steady = SteadyState(procs, pcm.size / SAMPLE_RATE)
    started = time.monotonic()
    latencies, sent, dropped, silent, arrivals, environments, last = run_streams(
        stack, clients, pcm, chunk_ms, aligned, on_streaming=steady.streaming)
    elapsed = time.monotonic() - started
    cpu = sum(p.cpu_percent(None) for p in procs if p.is_running())
    whole_run = cpu_ms_per_window(cpu_before, cpu_seconds(procs), len(latencies))
    per_window = steady.per_window(arrivals)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    spread = {web: count - spread_before[web] for web, count in served(balancer).items()} if spread_before else None
    return {
        "streams": n,
        "start": "aligned" if aligned else "staggered",
        "audio_seconds_per_stream": round(pcm.size / SAMPLE_RATE, 2),
        "windows_sent": sent,
        "windows_received": len(latencies),
        "windows_dropped": dropped,
        "windows_silent": silent,
        "environment_responses_per_window": round(environments / max(len(latencies), 1), 3),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(np.max(lat)), 1),
        "p99_ms_steady": steady.p99(latencies, arrivals),
        **steady.over_target(latencies, arrivals, last),
        "server_cpu_percent": round(cpu, 1),
        "cpu_ms_per_window": per_window,
        "cpu_ms_per_window_whole_run": whole_run,
        "cpu_ms_per_stream_start": cpu_ms_per_window(cpu_before, steady.at_start, n),  # n streams, not windows
        "chunk_ms": chunk_ms,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(elapsed, 1),
        **({"requests_by_web": spread} if spread else {}),
    }


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = [r["streams"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(streams, [r["p50_ms"] for r in results], "o-", label="p50")
    ax.plot(streams, [r["p99_ms"] for r in results], "s-", label="p99")
    if all(r.get("p99_ms_steady") for r in results):
        ax.plot(streams, [r["p99_ms_steady"] for r in results], "s:", label="p99, steady state")
    ax.axhline(TARGET_P99_MS, color="grey", linestyle="--", label=f"target p99 {TARGET_P99_MS} ms")
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("window latency (ms)")
    ax.set_yscale("log")
    web = results[0].get("web", 1)
    ax.set_title(f"Live streaming latency ({web} web, 2 workers, 2 cores, {results[0]['start']} starts)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def save(results, results_path, plot_path):
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    if plot_path is not None:
        plot(results, plot_path)


def print_table(results):
    roles = [name for name in dict(ROLES) if any(name in r["cpu_ms_per_window"] for r in results)]
    print(f"\n{'streams':>7} {'p50 ms':>8} {'p99 ms':>8} {'steady':>7} {'sent':>6} {'dropped':>7} {'cpu %':>6} "
          + " ".join(f"{name:>10}" for name in [*roles, "stack"])
          + "  (CPU ms per window, steady)  whole run  per stream start  over target: start / end / last  load average")
    for r in results:
        per_window = r["cpu_ms_per_window"]
        whole, start = r.get("cpu_ms_per_window_whole_run", {}), r.get("cpu_ms_per_stream_start", {})
        print(f"{r['streams']:>7} {r['p50_ms']:>8} {r['p99_ms']:>8} {r.get('p99_ms_steady') or '-':>7} "
              f"{r['windows_sent']:>6} "
              f"{r['windows_dropped']:>7} {r['server_cpu_percent']:>6} "
              + " ".join(f"{per_window.get(name, 0):>10}" for name in [*roles, "stack"])
              + f"  {whole.get('stack', '-'):>29}  {start.get('stack', '-'):>16}  "
              + f"{r.get('windows_over_target', '-'):>11}: {r.get('windows_over_target_at_start', '-')} / "
              + f"{r.get('windows_over_target_at_end', '-')} / {r.get('windows_over_target_last_of_stream', '-')}"
              + f"  {r['load_average']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 50, 100, 150, 200])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio streamed by each client")
    parser.add_argument("--chunk-ms", type=int, default=CHUNK_MS, help="as the dashboard and the CLI send")
    parser.add_argument("--workers", type=int, default=2)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--aligned", action="store_true",
                      help="start every stream at once (the worst case); saved to stream_aligned.json")
    mode.add_argument("--flood", action="store_true",
                      help="50 real-time users beside one user flooding 30 streams at 10x; saved to stream_flood.json")
    parser.add_argument("--web", type=int,
                        help="N web processes (N > 1: behind HAProxy, as make run-cluster starts them); "
                             "saved to stream_web<N>.json, so that --web 1 and --web 2 compare")
    parser.add_argument("--engine", choices=["memory", "sqlite"], default="memory",
                        help="the embedded MongoDB-wire server's engine (sqlite is `make run`'s default); "
                             "sqlite is saved to stream<...>_sqlite.json")
    args = parser.parse_args(argv)
    shortest = SteadyState.STEADY_FROM_S + SteadyState.STEADY_UNTIL_END_S + 2.0
    if args.seconds < shortest and not args.flood:
        parser.error(f"--seconds must be at least {shortest:g}: the steady state's CPU is measured from "
                     f"{SteadyState.STEADY_FROM_S:g} s after the first audio to "
                     f"{SteadyState.STEADY_UNTIL_END_S:g} s before its end")
    suffix = (("_aligned" if args.aligned else "_flood" if args.flood else "") + (f"_web{args.web}" if args.web else "")
              + ("_sqlite" if args.engine == "sqlite" else ""))
    results_path = RESULTS.with_name(f"stream{suffix}.json")
    plot_path = None if args.flood else PLOT.with_name(f"stream_latency{suffix}.png")
    args.web = args.web or 1

    pcm = speech(args.seconds)
    # The flooder may hold its 30 streams: what is measured is fair draining, not the per-user limits.
    stack = bench_stack(args.workers, "stream", web=args.web, engine=args.engine, STREAM_MAX_PENDING="10",
                        STREAM_MAX_STREAMS_PER_USER="30",
                        STREAM_MAX_CONNECTIONS_PER_USER="30", STREAM_SESSIONS_PER_MINUTE="60")
    results = []
    try:
        stack.wait_healthy(timeout=180)
        if args.web > 1:
            wait_all_up(stack.log_dir / "haproxy.sock")
        for n in tqdm([50] if args.flood else args.streams, desc="stream counts", unit="run"):
            try:
                result = (measure_flood(stack, pcm, args.chunk_ms) if args.flood
                          else measure(stack, n, pcm, args.chunk_ms, args.aligned))
            except ApiClientError as error:  # the stack could not take N streams: say so and stop
                tqdm.write(f"{n} streams: run failed: {error}")
                break
            result = {"web": args.web, "engine": args.engine, **result}
            results.append(result)
            tqdm.write(json.dumps(result))
            save(results, results_path, plot_path)  # a later N that fails leaves the earlier results saved
    finally:
        stack.stop()
    print_table(results)
    holding = [r["streams"] for r in results if r["p99_ms"] < TARGET_P99_MS and r["windows_dropped"] == 0]
    print(f"highest N with p99 < {TARGET_P99_MS} ms and no drops: {max(holding) if holding else 'none'}")
    print(json.dumps({"results": str(results_path.relative_to(ROOT)),
                      "highest_n_holding_target": max(holding, default=None)}))


if __name__ == "__main__":
    main()
