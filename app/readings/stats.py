"""Trends and distribution of readings (formulas in docs/analytics.md), added up from each user's
buckets (app/readings/buckets.py) or, for one session, from its series (app/readings/series.py):
never from the readings themselves. Silent windows are not emotions and are left out.

The period is counted in whole minutes: from the start of the minute holding `since` to the end
of the one holding `until` (the instant before it).
"""
from app.readings import buckets, series
from ml.params import CLASSES

BUCKET_SECONDS = {"minute": 60, "5minutes": 300, "15minutes": 900, "hour": 3600, "day": 86400, "week": 7 * 86400}
# The stored buckets each trend bucket is added up from.
SOURCE_UNIT = {"minute": "minute", "5minutes": "minute", "15minutes": "minute", "hour": "hour", "day": "day",
               "week": "day"}
# `bucket=auto`: the coarsest bucket that still gives this many points over the readings' span.
AUTO_MIN_POINTS = 12
AUTO_BUCKETS = ("week", "day", "hour", "15minutes", "5minutes", "minute")
# 1970-01-01 was a Thursday; weeks start on Sunday, as MongoDB's $dateTrunc counts them.
_EPOCH_WEEKDAY_FROM_SUNDAY = 4


def bucket_start(seconds, bucket):
    """The start (epoch s) of the trend bucket holding `seconds`."""
    if bucket == "week":
        day = buckets.floor(seconds, 86400)
        return day - ((day // 86400 + _EPOCH_WEEKDAY_FROM_SUNDAY) % 7) * 86400
    return buckets.floor(seconds, BUCKET_SECONDS[bucket])


def _session_pieces(session, since, until):
    """(epoch s, totals of one reading) for each reading of the session in the period."""
    start, end = buckets.period(since, until)
    entries, *_ = series.load(str(session.id))
    pieces = []
    for entry in map(series.unpack, entries):
        moment = buckets.epoch(entry["timestamp"])
        if start <= moment < end:
            totals = buckets.empty()
            buckets.add(totals, entry)
            pieces.append((moment, totals))
    return pieces


def _grouped(owner, session, since, until, bucket):
    """{trend bucket start (epoch s): totals} over the period."""
    if session is not None:
        merged = {}
        for moment, totals in _session_pieces(session, since, until):
            target = merged.setdefault(bucket_start(moment, bucket), buckets.empty())
            for field, value in totals.items():
                target[field] += value
        return merged
    cover = buckets.cover(*buckets.period(since, until), SOURCE_UNIT[bucket])
    return buckets.sums(str(owner.id), [(unit, start, bucket_start(start, bucket)) for unit, start in cover])


def choose_bucket(owner, session, since, until):
    """The bucket for `bucket=auto`: the coarsest giving at least AUTO_MIN_POINTS buckets over the
    span of the readings in the period (first to last minute holding one), minutes when even they
    give fewer (a new account's few minutes of readings)."""
    if session is not None:
        moments = [moment for moment, _ in _session_pieces(session, since, until)]
        span = (min(moments), max(moments) + 60) if moments else None
    else:
        span = buckets.data_span(str(owner.id), *buckets.period(since, until))
        span = span and (span[0], span[1] + 60)
    if span is None:
        return "minute"
    for bucket in AUTO_BUCKETS:
        if (span[1] - span[0]) / BUCKET_SECONDS[bucket] >= AUTO_MIN_POINTS:
            return bucket
    return "minute"


def trends(owner, session, since, until, bucket):
    merged = _grouped(owner, session, since, until, bucket)
    points = []
    for start in sorted(merged):
        totals = merged[start]
        n = totals["n"]
        if n <= 0:
            continue
        points.append({
            "start": buckets.as_datetime(start),
            "count": round(n),
            "probabilities": {name: totals[f"p:{name}"] / n for name in CLASSES},
            "valence": totals["s:valence"] / n,
            "arousal": totals["s:arousal"] / n,
            "intensity": totals["s:intensity"] / n,
        })
    return points


def distribution(owner, session, since, until):
    totals = buckets.empty()
    if session is not None:
        for _, piece in _session_pieces(session, since, until):
            for field, value in piece.items():
                totals[field] += value
    else:
        cover = buckets.cover(*buckets.period(since, until), "day")
        totals = buckets.sums(str(owner.id), [(unit, start, 0) for unit, start in cover]).get(0, totals)
    total = round(totals["n"])
    counts = {name: round(totals[f"d:{name}"]) for name in CLASSES}
    return {
        "total": total,
        "counts": counts,
        "distribution": {name: counts[name] / total if total else 0.0 for name in CLASSES},
        "mean_intensity": {name: totals[f"di:{name}"] / counts[name] if counts[name] else None for name in CLASSES},
        "overall_mean_intensity": totals["s:intensity"] / total if total else None,
    }
