"""Data retention: what `flask prune` deletes once it is older than RETENTION_DAYS."""
from datetime import UTC, datetime, timedelta

from app.environment.store import delete_responses
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse
from app.readings.store import delete_readings


def _delete(queryset):
    return queryset.delete()


def expired(retention_days, now=None):
    """Name -> (queryset of what is past retention, its deletion) in a safe deletion order:
    responses point at readings, and a session ends after all of its readings, so it goes last.
    Readings and responses are deleted by their one writer (app/readings/store.py,
    app/environment/store.py)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return {
        "environment responses": (EnvironmentResponse.objects(created_at__lt=cutoff), delete_responses),
        "readings": (EmotionReading.objects(timestamp__lt=cutoff), delete_readings),
        "analysis jobs": (AnalysisJob.objects(created_at__lt=cutoff), _delete),
        "ended sessions": (EmotionSession.objects(status="ended", ended_at__lt=cutoff), _delete),
    }


def prune(retention_days, dry_run=False):
    """Counts of what is (or, with dry_run, would be) deleted, by name."""
    counts = {}
    for name, (queryset, delete) in expired(retention_days).items():
        counts[name] = queryset.count() if dry_run else delete(queryset)
    return counts
