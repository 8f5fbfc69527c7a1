"""The collective mood: a snapshot over every user's recent readings, saved and broadcast."""
from datetime import timedelta

from flask import current_app

from app.domain.analytics import collective_snapshot
from app.models import CollectiveEmotion, EmotionReading
from app.models.base import ref_id, utcnow
from app.realtime import COLLECTIVE_ROOM, emit
from app.serializers import CollectiveSchema

FIELDS = ("owner", "session", "timestamp", "probabilities", "dominant", "valence", "arousal", "intensity")


def _readings(since, until):
    query = EmotionReading.objects(silence=False, timestamp__gte=since, timestamp__lt=until).only(*FIELDS)
    for r in query.no_cache():
        yield {"user_id": ref_id(r, "owner"), "session_id": ref_id(r, "session"), "timestamp": r.timestamp,
               "probabilities": r.probabilities, "dominant": r.dominant, "valence": r.valence,
               "arousal": r.arousal, "intensity": r.intensity}


def latest_snapshot():
    return CollectiveEmotion.objects.order_by("-created_at", "-id").first()


def take_snapshot(now=None):
    """Compute, store and broadcast the snapshot of the last COLLECTIVE_WINDOW_MINUTES."""
    now = now or utcnow()
    since = now - timedelta(minutes=current_app.config["COLLECTIVE_WINDOW_MINUTES"])
    previous = latest_snapshot()
    previous_dict = {"mean_valence": previous.mean_valence, "mean_arousal": previous.mean_arousal} if previous else None
    snapshot = collective_snapshot(_readings(since, now), since, now, previous_dict,
                                   min_users=current_app.config["COLLECTIVE_MIN_USERS"])
    saved = CollectiveEmotion(created_at=now, **snapshot).save()
    emit("collective", CollectiveSchema().dump(saved), COLLECTIVE_ROOM)
    return saved


def current_snapshot():
    """The latest snapshot, computed on demand when the cron job has not written one lately."""
    latest = latest_snapshot()
    stale_after = timedelta(seconds=2 * current_app.config["COLLECTIVE_INTERVAL_SECONDS"])
    if latest is None or utcnow() - latest.created_at > stale_after:
        return take_snapshot()
    return latest
