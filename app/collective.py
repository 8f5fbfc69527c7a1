"""The collective mood: a snapshot over every user's recent readings, saved and broadcast."""
from collections import Counter
from datetime import timedelta

from flask import current_app

from ml.params import CLASSES

from app.domain.analytics import collective_snapshot_from_totals
from app.models import CollectiveEmotion, EmotionReading
from app.models.base import utcnow
from app.realtime import COLLECTIVE_ROOM, emit
from app.serializers import CollectiveSchema

def _totals(since, until):
    """collective_totals() computed by MongoDB: one group per dominant emotion, merged here,
    so the snapshot never loads the window's readings into Python. The distinct users and
    sessions come from groups of their own rather than $addToSet, which the embedded
    MongoDB-wire server evaluates in quadratic time (3,000 readings: 2.6 s against 0.55 s for
    the three groups; the server is single-threaded, so every insert waited meanwhile)."""
    readings = EmotionReading._get_collection()
    match = {"$match": {"silence": False, "timestamp": {"$gte": since, "$lt": until}}}
    group = {
        "_id": "$dominant", "count": {"$sum": 1},
        "valence": {"$sum": "$valence"}, "arousal": {"$sum": "$arousal"}, "intensity": {"$sum": "$intensity"},
        **{f"p_{name}": {"$sum": f"$probabilities.{name}"} for name in CLASSES},
    }
    totals = {"count": 0, "dominant_counts": Counter(), "valence": 0.0, "arousal": 0.0, "intensity": 0.0,
              "probabilities": Counter(),
              "users": {row["_id"] for row in readings.aggregate([match, {"$group": {"_id": "$owner"}}])},
              "sessions": {row["_id"] for row in readings.aggregate([match, {"$group": {"_id": "$session"}}])
                           if row["_id"] is not None}}
    for row in readings.aggregate([match, {"$group": group}]):
        totals["count"] += row["count"]
        totals["dominant_counts"][row["_id"]] += row["count"]
        for key in ("valence", "arousal", "intensity"):
            totals[key] += row[key]
        totals["probabilities"].update({name: row[f"p_{name}"] for name in CLASSES})
    return totals


def latest_snapshot():
    return CollectiveEmotion.objects.order_by("-created_at", "-id").first()


def take_snapshot(now=None):
    """Compute, store and broadcast the snapshot of the last COLLECTIVE_WINDOW_MINUTES."""
    now = now or utcnow()
    since = now - timedelta(minutes=current_app.config["COLLECTIVE_WINDOW_MINUTES"])
    previous = latest_snapshot()
    previous_dict = {"mean_valence": previous.mean_valence, "mean_arousal": previous.mean_arousal} if previous else None
    snapshot = collective_snapshot_from_totals(_totals(since, now), since, now, previous_dict,
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
