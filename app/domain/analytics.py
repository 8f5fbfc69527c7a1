"""Session and collective analytics over emotion readings.

Pure functions over plain dicts (no Flask, MongoEngine or TensorFlow) so the web process, the
RQ workers, the cron job and the tests all share one implementation. Every metric and its
formula is defined in docs/analytics.md.

A reading is a mapping with ``timestamp`` (datetime), ``probabilities`` (class -> float),
``dominant``, ``confidence``, ``valence``, ``arousal``, ``intensity`` and optionally
``user_id`` and ``session_id``. Returned timestamps are timezone-aware UTC datetimes; the
caller serialises them.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from itertools import pairwise
from typing import Any

from ml.params import CLASSES

Reading = Mapping[str, Any]

# Valence spans [-1, 1]; a session whose last third differs from its first by less than a
# tenth of a unit has not measurably moved (the model's own noise is of that order).
PROGRESSION_THRESHOLD = 0.1
# Collective means average many users and move slowly, so a smaller change already matters.
TREND_THRESHOLD = 0.05
# Mean step length in the valence-arousal plane per reading: upper bounds of "low" and
# "moderate"; anything above is "high".
VOLATILITY_LOW = 0.1
VOLATILITY_MODERATE = 0.3
# A collective mood swing is a zigzag leg of mean valence at least this large.
SWING_THRESHOLD = 0.2


# ---------------------------------------------------------------------------- helpers


def _utc(moment: datetime) -> datetime:
    # pymongo returns naive datetimes unless the client is tz_aware; stored times are UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _sorted(readings: Iterable[Reading]) -> list[Reading]:
    return sorted(readings, key=lambda r: _utc(r["timestamp"]))


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _mean_of(readings: Sequence[Reading], key: str) -> float | None:
    return _mean([r[key] for r in readings])


def _labels(readings: Sequence[Reading]) -> list[str]:
    # Every model class always appears (stable keys for charts), plus any other label the
    # readings carry (an external detector may post one), in first-seen order.
    labels = list(CLASSES)
    for reading in readings:
        for label in (*reading["probabilities"], reading["dominant"]):
            if label not in labels:
                labels.append(label)
    return labels


def distribution(readings: Sequence[Reading]) -> dict[str, float]:
    """Share of readings whose dominant emotion is each label; {} when there are none."""
    if not readings:
        return {}
    counts = Counter(r["dominant"] for r in readings)
    return {label: counts[label] / len(readings) for label in _labels(readings)}


def dominant_emotion(readings: Sequence[Reading]) -> str | None:
    """Most frequent dominant label; ties go to the higher mean probability, then the name."""
    counts = Counter(r["dominant"] for r in readings)
    if not counts:
        return None

    def mean_probability(label: str) -> float:
        return math.fsum(r["probabilities"].get(label, 0.0) for r in readings) / len(readings)

    # max() keeps the first of equal keys, so iterating names in order settles exact ties.
    return max(sorted(counts), key=lambda label: (counts[label], mean_probability(label)))


def _moment(reading: Reading) -> dict[str, Any]:
    return {
        "timestamp": _utc(reading["timestamp"]),
        "dominant": reading["dominant"],
        "valence": reading["valence"],
        "arousal": reading["arousal"],
    }


# ---------------------------------------------------------------------------- session analytics


def _axis_stats(readings: Sequence[Reading], key: str) -> dict[str, Any]:
    if not readings:
        return {"mean": None, "peak": None, "low": None}
    # max()/min() return the first extreme, which is the earliest as readings are sorted.
    peak = max(readings, key=lambda r: r[key])
    low = min(readings, key=lambda r: r[key])
    return {
        "mean": _mean_of(readings, key),
        "peak": {"value": peak[key], "timestamp": _utc(peak["timestamp"])},
        "low": {"value": low[key], "timestamp": _utc(low["timestamp"])},
    }


def _chunks(readings: list[Reading], max_points: int | None) -> list[list[Reading]]:
    if max_points is not None and max_points < 1:
        raise ValueError("max_points must be at least 1")
    if max_points is None or len(readings) <= max_points:
        return [[r] for r in readings]
    n = len(readings)
    # Equal-count chunks: readings arrive at a fixed hop, so they are also near-equal in time.
    return [readings[i * n // max_points:(i + 1) * n // max_points] for i in range(max_points)]


def _timeline_point(chunk: Sequence[Reading]) -> dict[str, Any]:
    return {
        "timestamp": _utc(chunk[0]["timestamp"]),
        "count": len(chunk),
        "dominant": dominant_emotion(chunk),
        "valence": _mean_of(chunk, "valence"),
        "arousal": _mean_of(chunk, "arousal"),
        "intensity": _mean_of(chunk, "intensity"),
    }


def session_analytics(
    readings: Iterable[Reading],
    started_at: datetime,
    ended_at: datetime | None = None,
    *,
    max_points: int | None = None,
) -> dict[str, Any]:
    """Duration, counts, distribution, valence/arousal statistics and the time line.

    An open session (``ended_at`` None) lasts until its latest reading; pass the current
    time as ``ended_at`` to count the time since. ``max_points`` caps the time line by
    averaging equal-count chunks of consecutive readings.
    """
    ordered = _sorted(readings)
    start = _utc(started_at)
    if ended_at is not None:
        end = _utc(ended_at)
    else:
        end = _utc(ordered[-1]["timestamp"]) if ordered else start
    return {
        "duration_seconds": max(0.0, (end - start).total_seconds()),
        "reading_count": len(ordered),
        "distribution": distribution(ordered),
        "dominant_emotion": dominant_emotion(ordered),
        "valence": _axis_stats(ordered, "valence"),
        "arousal": _axis_stats(ordered, "arousal"),
        "mean_intensity": _mean_of(ordered, "intensity"),
        "timeline": [_timeline_point(chunk) for chunk in _chunks(ordered, max_points)],
    }


# ---------------------------------------------------------------------------- session insights


def _volatility(readings: Sequence[Reading]) -> float | None:
    steps = [
        math.hypot(b["valence"] - a["valence"], b["arousal"] - a["arousal"])
        for a, b in pairwise(readings)
    ]
    return _mean(steps)


def _volatility_level(volatility: float | None) -> str | None:
    if volatility is None:
        return None
    if volatility < VOLATILITY_LOW:
        return "low"
    return "moderate" if volatility < VOLATILITY_MODERATE else "high"


def _stability(readings: Sequence[Reading]) -> float | None:
    same = [a["dominant"] == b["dominant"] for a, b in pairwise(readings)]
    return _mean(same)


def _direction(delta: float | None, threshold: float, up: str, down: str) -> str | None:
    if delta is None:
        return None
    if delta > threshold:
        return up
    return down if delta < -threshold else "steady"


def _third(readings: Sequence[Reading]) -> dict[str, Any]:
    return {
        "count": len(readings),
        "valence": _mean_of(readings, "valence"),
        "arousal": _mean_of(readings, "arousal"),
        "dominant": dominant_emotion(readings),
    }


def _progression(readings: Sequence[Reading]) -> dict[str, Any]:
    if not readings:
        return {"first_third": None, "last_third": None, "valence_change": None,
                "arousal_change": None, "valence_direction": None, "arousal_direction": None}
    # At least one reading per third, so two readings still compare first with last.
    k = max(1, len(readings) // 3)
    first, last = _third(readings[:k]), _third(readings[-k:])
    valence_change = last["valence"] - first["valence"]
    arousal_change = last["arousal"] - first["arousal"]
    return {
        "first_third": first,
        "last_third": last,
        "valence_change": valence_change,
        "arousal_change": arousal_change,
        "valence_direction": _direction(valence_change, PROGRESSION_THRESHOLD, "improving", "declining"),
        "arousal_direction": _direction(arousal_change, PROGRESSION_THRESHOLD, "rising", "falling"),
    }


def _extremes(
    readings: Sequence[Reading], k: int, min_separation_s: float, highest: bool
) -> list[dict[str, Any]]:
    # Greedy non-maximum suppression: the best reading wins, its neighbours within
    # min_separation_s are skipped, so one long high is reported once, not k times.
    sign = -1.0 if highest else 1.0
    ranked = sorted(readings, key=lambda r: (sign * r["valence"], _utc(r["timestamp"])))
    chosen: list[Reading] = []
    for reading in ranked:
        if len(chosen) == k:
            break
        moment = _utc(reading["timestamp"])
        if all(abs((moment - _utc(c["timestamp"])).total_seconds()) >= min_separation_s for c in chosen):
            chosen.append(reading)
    return [_moment(r) for r in chosen]


def _transitions(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    counts = Counter(
        (a["dominant"], b["dominant"]) for a, b in pairwise(readings) if a["dominant"] != b["dominant"]
    )
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"from": src, "to": dst, "count": count} for (src, dst), count in ordered]


def _format_duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S UTC")


def _summary(readings: Sequence[Reading], insights: Mapping[str, Any]) -> str:
    if not readings:
        return "No readings yet, so there is nothing to summarise."
    if len(readings) == 1:
        only = readings[0]
        return (f"One reading at {_clock(_utc(only['timestamp']))}: {only['dominant']}, "
                f"valence {only['valence']:+.2f}, arousal {only['arousal']:+.2f}.")
    span = (_utc(readings[-1]["timestamp"]) - _utc(readings[0]["timestamp"])).total_seconds()
    dominant = dominant_emotion(readings)
    share = distribution(readings)[dominant]
    progression = insights["progression"]
    before, after = progression["first_third"]["valence"], progression["last_third"]["valence"]
    movement = {
        "improving": f"Valence rose from {before:+.2f} in the first third to {after:+.2f} in the last",
        "declining": f"Valence fell from {before:+.2f} in the first third to {after:+.2f} in the last",
        "steady": f"Valence held steady ({before:+.2f} in the first third, {after:+.2f} in the last)",
    }[progression["valence_direction"]]
    sentences = [
        f"{len(readings)} readings over {_format_duration(span)}, mostly {dominant} ({share:.0%}).",
        f"{movement}, with {insights['volatility_level']} volatility ({insights['volatility']:.2f} "
        f"per reading) and the same dominant emotion in {insights['stability']:.0%} of "
        f"consecutive readings.",
    ]
    if insights["transitions"]:
        top = insights["transitions"][0]
        sentences.append(f"Most frequent shift: {top['from']} to {top['to']} ({top['count']}x).")
    peak, low = insights["peaks"][0], insights["lows"][0]
    sentences.append(
        f"Highest valence {peak['valence']:+.2f} at {_clock(peak['timestamp'])} ({peak['dominant']}); "
        f"lowest {low['valence']:+.2f} at {_clock(low['timestamp'])} ({low['dominant']})."
    )
    return " ".join(sentences)


def session_insights(
    readings: Iterable[Reading], *, top_k: int = 3, min_separation_s: float = 10.0
) -> dict[str, Any]:
    """Volatility, stability, progression, peaks and lows, transitions and a summary."""
    ordered = _sorted(readings)
    volatility = _volatility(ordered)
    transitions = _transitions(ordered)
    insights: dict[str, Any] = {
        "reading_count": len(ordered),
        "volatility": volatility,
        "volatility_level": _volatility_level(volatility),
        "stability": _stability(ordered),
        "progression": _progression(ordered),
        "peaks": _extremes(ordered, top_k, min_separation_s, highest=True),
        "lows": _extremes(ordered, top_k, min_separation_s, highest=False),
        "transitions": transitions,
        "transition_count": sum(t["count"] for t in transitions),
    }
    insights["summary"] = _summary(ordered, insights)
    return insights


# ---------------------------------------------------------------------------- collective


def _trend(valence: float, arousal: float, previous: Mapping[str, Any] | None,
           threshold: float) -> dict[str, Any] | None:
    if previous is None or previous.get("mean_valence") is None:
        return None
    valence_delta = valence - previous["mean_valence"]
    return {
        "valence_delta": valence_delta,
        "arousal_delta": arousal - previous["mean_arousal"],
        "direction": _direction(valence_delta, threshold, "rising", "falling"),
    }


def collective_totals(readings: Iterable[Reading]) -> dict[str, Any]:
    """Sums over readings that collective_snapshot_from_totals needs; a MongoDB aggregation
    computes the same sums in the database (app/collective.py)."""
    totals: dict[str, Any] = {"count": 0, "users": set(), "sessions": set(), "dominant_counts": Counter(),
                              "valence": 0.0, "arousal": 0.0, "intensity": 0.0, "probabilities": Counter()}
    for r in readings:
        totals["count"] += 1
        if r.get("user_id") is not None:
            totals["users"].add(r["user_id"])
        if r.get("session_id") is not None:
            totals["sessions"].add(r["session_id"])
        totals["dominant_counts"][r["dominant"]] += 1
        for key in ("valence", "arousal", "intensity"):
            totals[key] += r[key]
        totals["probabilities"].update(r["probabilities"])
    return totals


def collective_snapshot_from_totals(
    totals: Mapping[str, Any],
    window_start: datetime,
    window_end: datetime,
    previous: Mapping[str, Any] | None = None,
    min_users: int = 3,
    *,
    trend_threshold: float = TREND_THRESHOLD,
) -> dict[str, Any]:
    """Collective mood from totals (see collective_totals) over window_start <= t < window_end.

    Below ``min_users`` distinct users the breakdown is hidden: distribution, dominant, the
    means and the trend are None (a mean over one user is that user's mood); counts stay.
    """
    count, users = totals["count"], len(totals["users"])
    snapshot: dict[str, Any] = {
        "window_start": _utc(window_start),
        "window_end": _utc(window_end),
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


def collective_snapshot(
    readings: Iterable[Reading],
    window_start: datetime,
    window_end: datetime,
    previous: Mapping[str, Any] | None = None,
    min_users: int = 3,
    *,
    trend_threshold: float = TREND_THRESHOLD,
) -> dict[str, Any]:
    """Collective mood over the readings with window_start <= timestamp < window_end."""
    start, end = _utc(window_start), _utc(window_end)
    inside = [r for r in readings if start <= _utc(r["timestamp"]) < end]
    return collective_snapshot_from_totals(collective_totals(inside), start, end, previous, min_users,
                                           trend_threshold=trend_threshold)


def _snapshot_moment(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": _utc(snapshot["window_end"]),
        "mean_valence": snapshot.get("mean_valence"),
        "mean_arousal": snapshot.get("mean_arousal"),
        "dominant": snapshot.get("dominant"),
        "active_users": snapshot["active_users"],
    }


def _leg(pivot: Mapping[str, Any], extreme: Mapping[str, Any]) -> dict[str, Any]:
    change = extreme["mean_valence"] - pivot["mean_valence"]
    return {
        "start": _utc(pivot["window_end"]),
        "end": _utc(extreme["window_end"]),
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
        by_hour[_utc(snap["window_end"]).hour].append(snap["active_users"])
    rows = [
        {"hour": hour, "mean_active_users": _mean(users), "max_active_users": max(users),
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
    ordered = sorted(snapshots, key=lambda s: _utc(s["window_end"]))
    visible = [s for s in ordered if s.get("mean_valence") is not None]

    def pick(choose, key: str, pool: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        return _snapshot_moment(choose(pool, key=lambda s: s[key])) if pool else None

    return {
        "snapshot_count": len(ordered),
        "visible_snapshot_count": len(visible),
        "mean_valence": _mean([s["mean_valence"] for s in visible]),
        "mean_arousal": _mean([s["mean_arousal"] for s in visible]),
        "mean_active_users": _mean([s["active_users"] for s in ordered]),
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
