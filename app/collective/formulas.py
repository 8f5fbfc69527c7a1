"""The collective mood's formulas: a snapshot from running totals, and insights over stored
snapshots. Pure functions (no Flask, MongoEngine or TensorFlow); docs/analytics.md defines each.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.sessions.analytics import as_utc, direction, mean
from ml.params import CLASSES

# Collective means average many users and move slowly, so a smaller change already matters.
TREND_THRESHOLD = 0.05
# A collective mood swing is a zigzag leg of mean valence at least this large.
SWING_THRESHOLD = 0.2


def _trend(valence: float, arousal: float, previous: Mapping[str, Any] | None,
           threshold: float) -> dict[str, Any] | None:
    if previous is None or previous.get("mean_valence") is None:
        return None
    valence_delta = valence - previous["mean_valence"]
    return {
        "valence_delta": valence_delta,
        "arousal_delta": arousal - previous["mean_arousal"],
        "direction": direction(valence_delta, threshold, "rising", "falling"),
    }


def collective_snapshot_from_totals(
    totals: Mapping[str, Any],
    window_start: datetime,
    window_end: datetime,
    previous: Mapping[str, Any] | None = None,
    min_users: int = 3,
    *,
    trend_threshold: float = TREND_THRESHOLD,
) -> dict[str, Any]:
    """Collective mood from the running totals of the readings timed in [window_start, window_end)
    (app/readings/rollups.py): count, users and sessions (sets of ids), dominant_counts,
    the sums of valence, arousal and intensity, and the sums of each class's probability.

    Below ``min_users`` distinct users the breakdown is hidden: distribution, dominant, the
    means and the trend are None (a mean over one user is that user's mood); counts stay.
    """
    count, users = totals["count"], len(totals["users"])
    snapshot: dict[str, Any] = {
        "window_start": as_utc(window_start),
        "window_end": as_utc(window_end),
        "reading_count": count,
        "active_users": users,
        "active_sessions": len(totals["sessions"]),
        "hidden": users < min_users,
        "distribution": None,
        "dominant": None,
        "mean_valence": None,
        "mean_arousal": None,
        "mean_intensity": None,
        "trend": None,
    }
    if snapshot["hidden"] or not count:
        return snapshot
    counts = totals["dominant_counts"]
    labels = list(CLASSES) + sorted(set(counts) - set(CLASSES))
    mean_valence, mean_arousal = totals["valence"] / count, totals["arousal"] / count
    snapshot.update(
        distribution={label: counts.get(label, 0) / count for label in labels},
        # As dominant_emotion(): most frequent, then the higher mean probability, then the name.
        dominant=max(sorted(counts), key=lambda label: (counts[label], totals["probabilities"].get(label, 0.0))),
        mean_valence=mean_valence,
        mean_arousal=mean_arousal,
        mean_intensity=totals["intensity"] / count,
        trend=_trend(mean_valence, mean_arousal, previous, trend_threshold),
    )
    return snapshot


def _snapshot_moment(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": as_utc(snapshot["window_end"]),
        "mean_valence": snapshot.get("mean_valence"),
        "mean_arousal": snapshot.get("mean_arousal"),
        "dominant": snapshot.get("dominant"),
        "active_users": snapshot["active_users"],
    }


def _leg(pivot: Mapping[str, Any], extreme: Mapping[str, Any]) -> dict[str, Any]:
    change = extreme["mean_valence"] - pivot["mean_valence"]
    return {
        "start": as_utc(pivot["window_end"]),
        "end": as_utc(extreme["window_end"]),
        "from_valence": pivot["mean_valence"],
        "to_valence": extreme["mean_valence"],
        "change": change,
        "direction": "rising" if change > 0 else "falling",
    }


def _mood_swings(visible: Sequence[Mapping[str, Any]], threshold: float) -> list[dict[str, Any]]:
    # Zigzag over mean valence: a leg ends when the series retraces by at least `threshold`
    # from the leg's extreme, so slow drifts count and sub-threshold wobble does not.
    if not visible:
        return []
    swings: list[dict[str, Any]] = []
    low = high = pivot = extreme = visible[0]
    direction = 0
    for snap in visible[1:]:
        value = snap["mean_valence"]
        if direction == 0:
            low = snap if value < low["mean_valence"] else low
            high = snap if value > high["mean_valence"] else high
            if value - low["mean_valence"] >= threshold:
                direction, pivot, extreme = 1, low, snap
            elif high["mean_valence"] - value >= threshold:
                direction, pivot, extreme = -1, high, snap
        elif direction * (value - extreme["mean_valence"]) >= 0:
            extreme = snap
        elif direction * (extreme["mean_valence"] - value) >= threshold:
            swings.append(_leg(pivot, extreme))
            direction, pivot, extreme = -direction, extreme, snap
    if direction != 0:
        swings.append(_leg(pivot, extreme))
    return swings


def _busiest_hours(snapshots: Sequence[Mapping[str, Any]], top: int) -> list[dict[str, Any]]:
    by_hour: dict[int, list[int]] = defaultdict(list)
    for snap in snapshots:
        by_hour[as_utc(snap["window_end"]).hour].append(snap["active_users"])
    rows = [
        {"hour": hour, "mean_active_users": mean(users), "max_active_users": max(users),
         "snapshots": len(users)}
        for hour, users in by_hour.items()
    ]
    rows.sort(key=lambda row: (-row["mean_active_users"], row["hour"]))
    return rows[:top]


def collective_insights(
    snapshots: Iterable[Mapping[str, Any]],
    *,
    swing_threshold: float = SWING_THRESHOLD,
    top_hours: int = 3,
) -> dict[str, Any]:
    """Peaks, mood swings and busiest hours (UTC hour of day) over stored snapshots."""
    ordered = sorted(snapshots, key=lambda s: as_utc(s["window_end"]))
    visible = [s for s in ordered if s.get("mean_valence") is not None]

    def pick(choose, key: str, pool: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        return _snapshot_moment(choose(pool, key=lambda s: s[key])) if pool else None

    return {
        "snapshot_count": len(ordered),
        "visible_snapshot_count": len(visible),
        "mean_valence": mean([s["mean_valence"] for s in visible]),
        "mean_arousal": mean([s["mean_arousal"] for s in visible]),
        "mean_active_users": mean([s["active_users"] for s in ordered]),
        "peaks": {
            "highest_valence": pick(max, "mean_valence", visible),
            "lowest_valence": pick(min, "mean_valence", visible),
            "highest_arousal": pick(max, "mean_arousal", visible),
            "lowest_arousal": pick(min, "mean_arousal", visible),
            "most_active": pick(max, "active_users", ordered),
        },
        "mood_swings": _mood_swings(visible, swing_threshold),
        "busiest_hours": _busiest_hours(ordered, top_hours),
    }
