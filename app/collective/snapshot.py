"""The collective mood: a snapshot of every user's recent readings, taken by the cron job
(app/collective/cron.py) or on demand, saved and broadcast to the collective room."""
from datetime import timedelta

from flask import current_app

from app.collective.formulas import collective_snapshot_from_totals
from app.collective.schemas import CollectiveSchema
from app.models import CollectiveEmotion
from app.models.base import utcnow
from app.readings.rollups import window_totals
from app.realtime import COLLECTIVE_ROOM, emit


def latest_snapshot():
    return CollectiveEmotion.objects.order_by("-created_at", "-id").first()


def take_snapshot(now=None):
    """Compute, store and broadcast the snapshot of the last COLLECTIVE_WINDOW_MINUTES."""
    now = now or utcnow()
    since = now - timedelta(minutes=current_app.config["COLLECTIVE_WINDOW_MINUTES"])
    previous = latest_snapshot()
    previous_dict = {"mean_valence": previous.mean_valence, "mean_arousal": previous.mean_arousal} if previous else None
    snapshot = collective_snapshot_from_totals(window_totals(since, now), since, now, previous_dict,
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


def aggregate_collective():
    """The cron job (queue `collective`): one snapshot."""
    snapshot = take_snapshot()
    return {"id": str(snapshot.id), "active_users": snapshot.active_users, "readings": snapshot.reading_count}
