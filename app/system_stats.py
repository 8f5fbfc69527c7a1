"""Figures for /api/system/stats: counts, throughput, queues, workers, job latency, model."""
import functools
import hashlib
import time
from datetime import timedelta
from pathlib import Path

from rq import Queue, Worker

from app.models import AnalysisJob, CollectiveEmotion, EmotionReading, EmotionSession, EnvironmentResponse, User
from app.models.base import utcnow

STARTED = time.time()
QUEUES = ("analysis", "collective")
LATENCY_KEY = "stats:window_latency_ms"
# The latest per-window latencies are kept in a capped Redis list (see record_window_latency).
LATENCY_SAMPLES = 1000


MODEL_FILE = Path(__file__).resolve().parent.parent / "ml" / "emotion_model.tflite"


@functools.cache
def model_version():
    """The shipped model's identity: file name and the start of its SHA-256 (None if absent)."""
    if not MODEL_FILE.exists():
        return None
    return f"{MODEL_FILE.stem}-{hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()[:12]}"


def record_window_latencies(pipe, milliseconds):
    """Queue on a Redis pipeline the enqueue-to-stored latencies of windows (called by workers)."""
    pipe.lpush(LATENCY_KEY, *(f"{ms:.1f}" for ms in milliseconds))
    pipe.ltrim(LATENCY_KEY, 0, LATENCY_SAMPLES - 1)


def _percentiles(values, points=(50, 90, 99)):
    if not values:
        return {f"p{p}": None for p in points}
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] for p in points}


def system_stats(redis):
    now = utcnow()
    last_10_min = EmotionReading.objects(created_at__gte=now - timedelta(minutes=10)).count()
    workers = Worker.all(connection=redis)
    latencies = [float(v) for v in redis.lrange(LATENCY_KEY, 0, -1)]
    return {
        "counts": {
            "users": User.objects.count(),
            "sessions": EmotionSession.objects.count(),
            "active_sessions": EmotionSession.objects(status="active").count(),
            "readings": EmotionReading.objects.count(),
            "environment_responses": EnvironmentResponse.objects.count(),
            "collective_snapshots": CollectiveEmotion.objects.count(),
            "analysis_jobs": AnalysisJob.objects.count(),
        },
        "readings_per_minute": last_10_min / 10,
        "queues": {name: Queue(name, connection=redis).count for name in QUEUES},
        "workers": [{"name": w.name, "state": w.get_state(), "queues": w.queue_names(),
                     "successful_jobs": w.successful_job_count, "failed_jobs": w.failed_job_count}
                    for w in workers],
        "window_latency_ms": {"samples": len(latencies), **_percentiles(latencies)},
        "model_version": model_version(),
        "uptime_seconds": round(time.time() - STARTED, 1),
    }
