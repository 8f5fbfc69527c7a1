"""Rollups of the recent readings: running totals per second of reading time, in Redis, for as
long as the collective snapshot's window lasts. app/readings/store.py, the one writer of
readings, adds every reading it stores and removes every reading it deletes; the collective
snapshot (app/collective/snapshot.py) reads a window's totals in one round trip.

The snapshot used to aggregate the window's readings in MongoDB every interval. With 100 live
streams that is 30,000 readings each time, and the embedded MongoDB-wire server, which is
single-threaded, made every insert wait meanwhile: the largest share of the streaming latency
tail (docs/BENCHMARKS.md). Adding a batch's readings here costs one Redis round trip.
"""
import calendar
import time
from collections import Counter
from datetime import timedelta

from flask import current_app

from app.models.base import utcnow

SUMS = ("valence", "arousal", "intensity")
# A second's totals outlive the window by this much, for snapshots taken a little late.
BUCKET_SLACK_S = 120


def _bucket_keys(second):
    key = f"collective:{second}"
    return key, f"{key}:users", f"{key}:sessions"


def _second(timestamp):
    return calendar.timegm(timestamp.utctimetuple())


def tally(pipe, documents, sign=1):
    """Queue on `pipe` the addition of stored readings (dicts of their stored fields; sign=-1:
    the removal of deleted ones) to the running totals; silent readings and readings older than
    the window (and its slack) count for nothing."""
    window_s = 60 * current_app.config["COLLECTIVE_WINDOW_MINUTES"] + BUCKET_SLACK_S
    horizon = time.time() - window_s
    seconds = {}
    for doc in documents:
        second = _second(doc["timestamp"])
        if doc.get("silence") or second < horizon:
            continue
        total = seconds.setdefault(second, {"count": 0, "dominant": Counter(), "sums": Counter(),
                                            "users": Counter(), "sessions": Counter()})
        total["count"] += 1
        total["dominant"][doc["dominant"]] += 1
        total["sums"].update({name: doc[name] for name in SUMS})
        total["sums"].update({f"p:{name}": p for name, p in doc["probabilities"].items()})
        total["users"][str(doc["owner"])] += 1
        if doc.get("session") is not None:
            total["sessions"][str(doc["session"])] += 1
    for second, total in seconds.items():
        key, users_key, sessions_key = _bucket_keys(second)
        pipe.hincrby(key, "count", sign * total["count"])
        for name, n in total["dominant"].items():
            pipe.hincrby(key, f"d:{name}", sign * n)
        for name, value in total["sums"].items():
            pipe.hincrbyfloat(key, name, sign * value)
        for ids_key, ids in ((users_key, total["users"]), (sessions_key, total["sessions"])):
            for member, n in ids.items():
                pipe.hincrby(ids_key, member, sign * n)
        for name in (key, users_key, sessions_key):
            pipe.expireat(name, int(second + window_s))


def recent(queryset):
    """The readings of `queryset` still inside a collective window (those whose removal changes
    the running totals)."""
    cutoff = utcnow() - timedelta(minutes=current_app.config["COLLECTIVE_WINDOW_MINUTES"], seconds=BUCKET_SLACK_S)
    return queryset.filter(silence=False, timestamp__gte=cutoff)


def window_totals(since, until):
    """The totals of the readings timed in [since, until), to the second, in the form
    app.collective.formulas.collective_snapshot_from_totals takes."""
    pipe = current_app.extensions["redis"].pipeline(transaction=False)
    for second in range(_second(since) + (since.microsecond > 0), _second(until) + (until.microsecond > 0)):
        for key in _bucket_keys(second):
            pipe.hgetall(key)
    replies = pipe.execute()
    totals = {"count": 0, "dominant_counts": Counter(), "valence": 0.0, "arousal": 0.0, "intensity": 0.0,
              "probabilities": Counter(), "users": set(), "sessions": set()}
    for fields, users, sessions in zip(replies[::3], replies[1::3], replies[2::3]):
        for field, value in fields.items():
            field = field.decode()
            if field == "count":
                totals["count"] += int(value)
            elif field.startswith("d:"):
                totals["dominant_counts"][field[2:]] += int(value)
            elif field.startswith("p:"):
                totals["probabilities"][field[2:]] += float(value)
            else:
                totals[field] += float(value)
        totals["users"].update(member for member, n in users.items() if int(n) > 0)
        totals["sessions"].update(member for member, n in sessions.items() if int(n) > 0)
    totals["dominant_counts"] = +totals["dominant_counts"]  # drops labels whose readings were all deleted
    return totals
