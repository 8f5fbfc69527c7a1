"""Session analytics and insights over emotion readings.

Pure functions over plain dicts (no Flask, MongoEngine or TensorFlow); every metric and its
formula is defined in docs/analytics.md. The collective mood's formulas, which share the
helpers below, are in app/collective/formulas.py.

A reading is a mapping with ``timestamp`` (datetime), ``probabilities`` (class -> float),
``dominant``, ``confidence``, ``valence``, ``arousal`` and ``intensity``; a streamed or uploaded
window also has ``window_end`` (seconds of audio), ``index`` and ``segment`` (the stream or
upload), which ``on_audio_clock`` uses. Returned timestamps are timezone-aware UTC datetimes;
the caller serialises them.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

from ml.params import CLASSES

Reading = Mapping[str, Any]

# Valence spans [-1, 1]; a session whose last third differs from its first by less than a
# tenth of a unit has not measurably moved (the model's own noise is of that order).
PROGRESSION_THRESHOLD = 0.1
# Mean step length in the valence-arousal plane per reading: upper bounds of "low" and
# "moderate"; anything above is "high".
VOLATILITY_LOW = 0.1
VOLATILITY_MODERATE = 0.3


# ---------------------------------------------------------------------------- helpers


def as_utc(moment: datetime) -> datetime:
    # pymongo returns naive datetimes unless the client is tz_aware; stored times are UTC.
    if moment.tzinfo is timezone.utc:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _sorted(readings: Iterable[Reading]) -> list[Reading]:
    return sorted(readings, key=lambda r: as_utc(r["timestamp"]))


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _mean_of(readings: Sequence[Reading], key: str) -> float | None:
    return mean([r[key] for r in readings])


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
    most = max(counts.values())
    tied = sorted(label for label, count in counts.items() if count == most)
    if len(tied) == 1:
        return tied[0]

    def mean_probability(label: str) -> float:
        return math.fsum(r["probabilities"].get(label, 0.0) for r in readings) / len(readings)

    # max() keeps the first of equal keys, so iterating names in order settles exact ties.
    return max(tied, key=mean_probability)


def _moment(reading: Reading) -> dict[str, Any]:
    return {
        "timestamp": as_utc(reading["timestamp"]),
        "dominant": reading["dominant"],
        "valence": reading["valence"],
        "arousal": reading["arousal"],
    }


# ---------------------------------------------------------------------------- audio time


def on_audio_clock(readings: Iterable[Reading], started_at: datetime) -> tuple[list[Reading], float | None]:
    """The readings in stream order, each window timed by its audio: started_at plus the end of
    its window in the session's audio, and that audio's length (None when no reading is a window).

    Windows arrive when a worker gets to them, which for a file streamed faster than real time
    (`mood-mirror stream --fast`) or an upload is nothing like when their audio was spoken; their
    positions are. Stream order is (arrival, window index); a stream resumed in the same session,
    or another upload into it, starts its windows at 0 again and is placed after what came before.
    Readings that are no window (posted by a detector) keep their time.
    """
    start = as_utc(started_at)
    ordered = sorted(readings, key=lambda r: (as_utc(r["timestamp"]), -1 if r.get("index") is None else r["index"]))
    offset = previous_end = 0.0
    segment: Any = None
    audio_end: float | None = None
    placed = []
    for reading in ordered:
        end = reading.get("window_end")
        if end is not None:
            if reading.get("segment") != segment or end < previous_end:
                offset += previous_end
                segment = reading.get("segment")
            previous_end = end
            position = offset + end
            audio_end = position if audio_end is None else max(audio_end, position)
            reading = {**reading, "timestamp": start + timedelta(seconds=position)}
        placed.append(reading)
    return placed, audio_end


# ---------------------------------------------------------------------------- session analytics


def _axis_stats(readings: Sequence[Reading], key: str) -> dict[str, Any]:
    if not readings:
        return {"mean": None, "peak": None, "low": None}
    # max()/min() return the first extreme, which is the earliest as readings are sorted.
    peak = max(readings, key=lambda r: r[key])
    low = min(readings, key=lambda r: r[key])
    return {
        "mean": _mean_of(readings, key),
        "peak": {"value": peak[key], "timestamp": as_utc(peak["timestamp"])},
        "low": {"value": low[key], "timestamp": as_utc(low["timestamp"])},
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
        "timestamp": as_utc(chunk[0]["timestamp"]),
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
    audio_seconds: float | None = None,
) -> dict[str, Any]:
    """Duration, counts, distribution, valence/arousal statistics and the time line.

    With ``audio_seconds`` (the session's audio, from ``on_audio_clock``) that is the duration.
    Otherwise an open session (``ended_at`` None) lasts until its latest reading; pass the
    current time as ``ended_at`` to count the time since. ``max_points`` caps the time line by
    averaging equal-count chunks of consecutive readings.
    """
    ordered = _sorted(readings)
    start = as_utc(started_at)
    if audio_seconds is not None:
        end = start + timedelta(seconds=audio_seconds)
    elif ended_at is not None:
        end = as_utc(ended_at)
    else:
        end = as_utc(ordered[-1]["timestamp"]) if ordered else start
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
    return mean(steps)


def _volatility_level(volatility: float | None) -> str | None:
    if volatility is None:
        return None
    if volatility < VOLATILITY_LOW:
        return "low"
    return "moderate" if volatility < VOLATILITY_MODERATE else "high"


def _stability(readings: Sequence[Reading]) -> float | None:
    same = [a["dominant"] == b["dominant"] for a, b in pairwise(readings)]
    return mean(same)


def direction(delta: float | None, threshold: float, up: str, down: str) -> str | None:
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
        "valence_direction": direction(valence_change, PROGRESSION_THRESHOLD, "improving", "declining"),
        "arousal_direction": direction(arousal_change, PROGRESSION_THRESHOLD, "rising", "falling"),
    }


def _extremes(
    readings: Sequence[Reading], k: int, min_separation_s: float, highest: bool
) -> list[dict[str, Any]]:
    # Greedy non-maximum suppression: the best reading wins, its neighbours within
    # min_separation_s are skipped, so one long high is reported once, not k times.
    sign = -1.0 if highest else 1.0
    ranked = sorted(readings, key=lambda r: (sign * r["valence"], as_utc(r["timestamp"])))
    chosen: list[Reading] = []
    for reading in ranked:
        if len(chosen) == k:
            break
        moment = as_utc(reading["timestamp"])
        if all(abs((moment - as_utc(c["timestamp"])).total_seconds()) >= min_separation_s for c in chosen):
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
        return (f"One reading at {_clock(as_utc(only['timestamp']))}: {only['dominant']}, "
                f"valence {only['valence']:+.2f}, arousal {only['arousal']:+.2f}.")
    span = (as_utc(readings[-1]["timestamp"]) - as_utc(readings[0]["timestamp"])).total_seconds()
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
    transitions = insights["transitions"]
    if len(transitions) > 1 and transitions[1]["count"] == transitions[0]["count"]:
        # A tie would otherwise be "won" by the alphabet.
        sentences.append("No shift between emotions is more frequent than another.")
    elif transitions:
        top = transitions[0]
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
