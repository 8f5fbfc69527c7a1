"""Trends and distribution of readings, computed by MongoDB aggregation pipelines
(formulas in docs/analytics.md). Silent windows are not emotions and are left out."""
from app.models import EmotionReading
from ml.params import CLASSES

# bucket name -> ($dateTrunc unit, binSize)
BUCKET_UNITS = {
    "minute": ("minute", 1),
    "5minutes": ("minute", 5),
    "15minutes": ("minute", 15),
    "hour": ("hour", 1),
    "day": ("day", 1),
    "week": ("week", 1),
}


def _match(owner, session, since, until):
    match = {"owner": owner.id, "silence": False, "timestamp": {"$gte": since, "$lt": until}}
    if session is not None:
        match["session"] = session.id
    return {"$match": match}


def _aggregate(pipeline):
    return list(EmotionReading._get_collection().aggregate(pipeline))


def trends(owner, session, since, until, bucket):
    unit, size = BUCKET_UNITS[bucket]
    group = {
        "_id": {"$dateTrunc": {"date": "$timestamp", "unit": unit, "binSize": size}},
        "count": {"$sum": 1},
        "valence": {"$avg": "$valence"},
        "arousal": {"$avg": "$arousal"},
        "intensity": {"$avg": "$intensity"},
        **{f"p_{name}": {"$avg": f"$probabilities.{name}"} for name in CLASSES},
    }
    rows = _aggregate([_match(owner, session, since, until), {"$group": group}, {"$sort": {"_id": 1}}])
    return [
        {
            "start": row["_id"],
            "count": row["count"],
            "probabilities": {name: row[f"p_{name}"] for name in CLASSES},
            "valence": row["valence"],
            "arousal": row["arousal"],
            "intensity": row["intensity"],
        }
        for row in rows
    ]


def distribution(owner, session, since, until):
    group = {"_id": "$dominant", "count": {"$sum": 1}, "intensity": {"$avg": "$intensity"}}
    rows = {row["_id"]: row for row in _aggregate([_match(owner, session, since, until), {"$group": group}])}
    total = sum(row["count"] for row in rows.values())
    counts = {name: rows[name]["count"] if name in rows else 0 for name in CLASSES}
    intensity = {name: rows[name]["intensity"] if name in rows else None for name in CLASSES}
    overall = sum(row["count"] * row["intensity"] for row in rows.values()) / total if total else None
    return {
        "total": total,
        "counts": counts,
        "distribution": {name: counts[name] / total if total else 0.0 for name in CLASSES},
        "mean_intensity": intensity,
        "overall_mean_intensity": overall,
    }
