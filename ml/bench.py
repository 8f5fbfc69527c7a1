"""Speed benchmark on one CPU thread (a benchmark, not a timed test).

    python -m ml.bench [--windows 200] [--data PATH] [--save]

Measures, each in a fresh subprocess so that load time and peak RSS are clean (load:
interpreter start, imports and model, the median of 5 fresh processes):
  * ours: ml.inference.EmotionRecognizer (LiteRT runtime, log-mel inside the
    .tflite graph): model load (imports + load), median / p99 latency per 3 s
    window adapted to a speaker, as a worker serves it: predict_batch([window],
    [history], with_stats=True) and adapt.merge of the window's statistics
    (validation, silence gate, features, model, adaptation), real-time factor, peak RSS;
    and per window of a live stream (the same clips end to end, a window every second): each
    window also takes the frames the one before handed on (``carried``), as a worker does;
  * the pipeline most projects use: librosa MFCC (40 coefficients) + a Keras
    MFCC CNN called with model.predict per clip, on the same windows.
Prints a table, the speed ratio, and a JSON summary as its LAST line
(--save also writes bench/results/model.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
REPO = Path(__file__).resolve().parent.parent


def _windows(n, data_path):
    """n 3 s windows at 16 kHz: the first 3 s of corpus clips (actors 21-24), else synthetic."""
    import numpy as np

    from ml import data, params
    wins, source = [], "synthetic harmonic tones"
    if data.corpus_available(data_path):
        clips = [c for c in data.load_metadata(data_path) if c.actor in data.TEST_ACTORS]
        for c in clips[:n]:
            x = data.load_waveform(c)[:params.WINDOW_SAMPLES]
            wins.append(np.pad(x, (0, params.WINDOW_SAMPLES - len(x))))
        source = "RAVDESS actors 21-24, first 3 s of each clip"
    rng = np.random.default_rng(0)
    while len(wins) < n:
        t = np.arange(params.WINDOW_SAMPLES) / params.SAMPLE_RATE
        f0 = rng.uniform(100, 300)
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 10))
        wins.append((0.2 * x / np.abs(x).max()).astype(np.float32))
    return np.stack(wins[:n]).astype(np.float32), source


def _peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _served(rec, windows, carry):
    """Latencies (s) and CPU ms per window of windows served one at a time as a worker serves
    one speaker's: each adapted to the statistics of the windows before it, and with ``carry``
    given the frames the window before handed on."""
    import time

    from ml import adapt
    history, carried, lat = adapt.empty(), None, []
    cpu0 = time.process_time()
    for w in windows:
        t = time.perf_counter()
        _, (added,), *onward = rec.predict_batch([w], [history], with_stats=True,
                                                 carried=[carried] if carry else None)
        if added is not None:
            history = adapt.merge(history, added)
        carried = onward[0][0] if onward else None
        lat.append(time.perf_counter() - t)
    return lat, (time.process_time() - cpu0) * 1000 / len(windows)


def _child_ours(n, data_path):
    import time

    import numpy as np

    from ml.inference import EmotionRecognizer
    rec = EmotionRecognizer.load(num_threads=1)

    from ml import params
    wins, source = _windows(n, data_path)
    for w in wins[:5]:
        rec.predict(w, 16000)
    lat, cpu_ms = _served(rec, wins, carry=False)
    stream, second = np.concatenate(list(wins)), params.SAMPLE_RATE
    streamed, streamed_cpu_ms = _served(
        rec, [stream[s:s + params.WINDOW_SAMPLES] for s in range(0, len(wins) * second, second)], carry=True)
    rec.predict_batch(list(wins[:32]))          # warm-up
    t = time.perf_counter()
    rec.predict_batch(list(wins[32:64]))
    batch32 = (time.perf_counter() - t) / 32
    lat = np.array(lat) * 1000
    return {"name": "ours: LiteRT .tflite with in-graph log-mel and pitch",
            "median_ms": round(float(np.median(lat)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "cpu_ms_per_window": round(cpu_ms, 3),
            "batch32_ms_per_window": round(batch32 * 1000, 3),
            "streamed_median_ms": round(float(np.median(streamed)) * 1000, 3),
            "streamed_cpu_ms_per_window": round(streamed_cpu_ms, 3),
            "realtime_factor": round(3000.0 / float(np.median(lat)), 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "windows": len(wins),
            "tensorflow_imported": "tensorflow" in sys.modules, "source": source,
            "model_bytes": rec.model_path.stat().st_size}


def _child_reference(n, data_path):
    import time
    t0 = time.perf_counter()
    import keras
    import librosa
    import numpy as np
    import tensorflow as tf
    from keras import layers
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    # a typical MFCC CNN of similar size (weights do not change the timing)
    model = keras.Sequential([
        keras.Input((None, 40)),
        layers.Conv1D(64, 5, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling1D(2),
        layers.Conv1D(128, 5, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling1D(2),
        layers.Conv1D(128, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling1D(), layers.Dropout(0.3),
        layers.Dense(64, activation="relu"), layers.Dense(8, activation="softmax")])
    load_s = time.perf_counter() - t0

    def run(w):
        m = librosa.feature.mfcc(y=w, sr=16000, n_mfcc=40, n_fft=512, hop_length=160).T
        m = (m - m.mean(axis=0)) / (m.std(axis=0) + 1e-6)
        return model.predict(m[None], verbose=0)

    wins, source = _windows(n, data_path)
    for w in wins[:5]:
        run(w)
    lat = []
    for w in wins:
        t = time.perf_counter()
        run(w)
        lat.append(time.perf_counter() - t)
    lat = np.array(lat) * 1000
    return {"name": "reference: librosa MFCC + Keras model.predict per clip",
            "load_s": round(load_s, 3), "median_ms": round(float(np.median(lat)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "realtime_factor": round(3000.0 / float(np.median(lat)), 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "windows": len(wins), "source": source,
            "params": int(model.count_params()),
            "versions": {"librosa": librosa.__version__, "tensorflow": tf.__version__}}


def _spawn(which, n, data_path):
    cmd = [sys.executable, "-m", "ml.bench", "--child", which, "--windows", str(n)]
    if data_path:
        cmd += ["--data", str(data_path)]
    env = {**os.environ, **ONE_THREAD}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    if out.returncode:
        raise SystemExit(f"bench child {which} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load_seconds() -> float:
    """A serving process's cold start: a fresh interpreter that imports and loads the model."""
    import time
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from ml.inference import EmotionRecognizer; EmotionRecognizer.load()"],
                   check=True, capture_output=True, env={**os.environ, **ONE_THREAD}, cwd=REPO, timeout=120)
    return round(time.perf_counter() - t0, 3)


CHILDREN = {"ours": _child_ours, "reference": _child_reference}
LOAD_REPEATS = 5


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=200)
    from ml import data
    data.add_data_argument(ap)
    ap.add_argument("--save", action="store_true", help="also write bench/results/model.json")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(CHILDREN[a.child](a.windows, a.data)))
        return
    load_before = os.getloadavg()[0]     # other work on the machine inflates latencies, not CPU ms
    ours = _spawn("ours", a.windows, a.data)
    ours["load_s"] = statistics.median(_load_seconds() for _ in range(LOAD_REPEATS))
    ref = _spawn("reference", min(a.windows, 100), a.data)
    ratio = ref["median_ms"] / ours["median_ms"]
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    summary = {
        "threads": 1, "window_s": 3.0, "cpu": cpu, "cpu_count": os.cpu_count(),
        "loadavg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "ours": ours, "reference": ref, "speedup_median": round(ratio, 1),
        "targets": {"median_ms<=3": ours["median_ms"] <= 3.0, "speedup>=10": ratio >= 10,
                    "load_s<2": ours["load_s"] < 2.0, "peak_rss_mb<400": ours["peak_rss_mb"] < 400},
    }
    print(f"ours: CPU {ours['cpu_ms_per_window']:.2f} ms per window (load average {load_before:.1f}); a live "
          f"stream's: median {ours['streamed_median_ms']:.2f} ms, CPU {ours['streamed_cpu_ms_per_window']:.2f} ms")
    for r in (ours, ref):
        print(f"{r['name']}\n  load {r['load_s']:.2f} s   median {r['median_ms']:.2f} ms   "
              f"p99 {r['p99_ms']:.2f} ms   {r['realtime_factor']:.0f}x real time   "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"speed-up (median): {ratio:.1f}x")
    if a.save:
        out = REPO / "bench" / "results" / "model.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
