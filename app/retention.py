"""Data retention: what `flask prune` deletes once it is older than RETENTION_DAYS."""
from datetime import UTC, datetime, timedelta

from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse


def expired(retention_days, now=None):
    """Name -> queryset of what is past retention, in a safe deletion order: responses point
    at readings, and a session ends after all of its readings, so it goes last."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return {
        "environment responses": EnvironmentResponse.objects(created_at__lt=cutoff),
        "readings": EmotionReading.objects(timestamp__lt=cutoff),
        "analysis jobs": AnalysisJob.objects(created_at__lt=cutoff),
        "ended sessions": EmotionSession.objects(status="ended", ended_at__lt=cutoff),
    }


def prune(retention_days, dry_run=False):
    """Counts of what is (or, with dry_run, would be) deleted, by name."""
    counts = {}
    for name, queryset in expired(retention_days).items():
        counts[name] = queryset.count() if dry_run else queryset.delete()
    return counts
