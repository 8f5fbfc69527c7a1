"""Figures for /api/system/stats: counts, throughput, queues, workers, window latency, model."""
import time
from datetime import timedelta

from rq import Queue

from app.analysis.model import model_version
from app.live.ready import window_latencies
from app.models import AnalysisJob, CollectiveEmotion, EmotionReading, EmotionSession, EnvironmentResponse, User
from app.models.base import utcnow
from app.system.health import live_workers

STARTED = time.time()
QUEUES = ("analysis", "collective")


def _percentiles(values, points=(50, 90, 99)):
    if not values:
        return {f"p{p}": None for p in points}
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] for p in points}


def system_stats(redis):
    now = utcnow()
    last_10_min = EmotionReading.objects(created_at__gte=now - timedelta(minutes=10)).count()
    workers = live_workers(redis)
    latencies = window_latencies(redis)
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
