"""Each user's readings summed per minute, hour and day of reading time (the bucket pattern of
time-series stores), in Redis. app/readings/store.py adds every reading it inserts and subtracts
every reading it deletes, in the Redis round trip it makes anyway; the trends and the
distribution (app/readings/stats.py) read these sums instead of the readings, so their cost
depends on the range asked for, not on how many readings are stored. `flask db rebuild-rollups`
recomputes them from the readings (after a Redis loss, or to check them).

A bucket is the string `rollup:{<owner>}:<unit>:<start epoch s>`, its totals packed as
little-endian doubles in the order of LAYOUT: `n` (non-silent readings), `silent` (silent
windows), `d:<label>` (readings with that dominant), `di:<label>` (their summed intensity),
`p:<class>` (summed probability), `s:<field>` and `q:<field>` (sum and sum of squares of valence,
arousal, intensity, confidence). Five or fifteen minutes are summed from minutes, a week from
days. `rollup:{<owner>}:minutes` is the sorted set of the minutes that hold readings.

Why Redis and not a MongoDB collection: the embedded MongoDB-wire server costs 6 ms (memory
engine) to 29 ms (SQLite) per pair of bucket upserts, as much as or more than the reading's own
insert; adding them to every write would have cut the ingest throughput by a third or more.
Here a write costs one script call for the whole batch, in the pipeline the store already sends.
Why packed and not a hash of fields: a bucket's 34 fields read, formatted and written as hash
fields cost Redis 140–150 µs a reading (three buckets each); packed, a bucket is one GET and one
SET, its sums unpacked and packed in C (docs/BENCHMARKS.md).
"""
import calendar
import struct
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
from flask import current_app

from ml.params import CLASSES

UNITS = {"minute": 60, "hour": 3600, "day": 86400}
FIELDS = ("valence", "arousal", "intensity", "confidence")
PREFIX = "rollup:"

LAYOUT = ("n", "silent", *(f"d:{c}" for c in CLASSES), *(f"di:{c}" for c in CLASSES),
          *(f"p:{c}" for c in CLASSES), *(f"s:{f}" for f in FIELDS), *(f"q:{f}" for f in FIELDS))
_BUCKET = struct.Struct(f"<{len(LAYOUT)}d")

# KEYS: per (owner, minute), its minute, hour and day buckets and the owner's set of minutes;
# ARGV: the sign, the number of classes, then per (owner, minute): the minute's start and how
# many readings, then per reading its dominant's place in CLASSES (1-based; 0 for a silent one)
# and its valence, arousal, intensity, confidence and probabilities (in CLASSES' order) packed as
# little-endian doubles ('' for a silent one). The sums are made here, as add() makes them, in
# LAYOUT's order: one call for a batch, where one command per field and bucket cost the worker
# more (redis-py packs each argument and parses each reply in Python) than the reading's insert.
# A bucket left with no reading (after a deletion) is removed.
_APPLY = """
local sign = tonumber(ARGV[1])
local nc = tonumber(ARGV[2])
local width = 2 + 3 * nc + 8
local layout = '<' .. string.rep('d', width)
local reading = '<' .. string.rep('d', 4 + nc)
local i, k = 3, 0
while i <= #ARGV do
  local minute, count = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local t = {}
  for j = 1, width do t[j] = 0 end
  for _ = 1, count do
    local d = tonumber(ARGV[i])
    if d == 0 then
      t[2] = t[2] + sign
    else
      local v = {struct.unpack(reading, ARGV[i + 1])}
      t[1] = t[1] + sign
      t[2 + d] = t[2 + d] + sign
      t[2 + nc + d] = t[2 + nc + d] + sign * v[3]
      for c = 1, nc do t[2 + 2 * nc + c] = t[2 + 2 * nc + c] + sign * v[4 + c] end
      for f = 1, 4 do
        t[2 + 3 * nc + f] = t[2 + 3 * nc + f] + sign * v[f]
        t[6 + 3 * nc + f] = t[6 + 3 * nc + f] + sign * v[f] * v[f]
      end
    end
    i = i + 2
  end
  for level = 1, 3 do
    local bucket = KEYS[k + level]
    local stored = redis.call('GET', bucket)
    local out = stored and {struct.unpack(layout, stored)} or {}
    for j = 1, width do out[j] = (out[j] or 0) + t[j] end
    if out[1] <= 0 and out[2] <= 0 then
      redis.call('DEL', bucket)
      if level == 1 then redis.call('ZREM', KEYS[k + 4], minute) end
    else
      redis.call('SET', bucket, struct.pack(layout, unpack(out, 1, width)))
      if level == 1 then redis.call('ZADD', KEYS[k + 4], minute, minute) end
    end
  end
  k = k + 4
end
"""
_VALUES = struct.Struct(f"<{len(FIELDS) + len(CLASSES)}d")
_PLACE = {name: place for place, name in enumerate(CLASSES, 1)}


def _redis():
    return current_app.extensions["redis"]


def epoch(moment):
    return calendar.timegm(moment.utctimetuple())


def floor(seconds_since_epoch, unit_seconds):
    return seconds_since_epoch - seconds_since_epoch % unit_seconds


def key(owner_id, unit, start):
    # The owner in braces: all of an owner's buckets hash to one Redis Cluster slot, as the script needs.
    return f"{PREFIX}{{{owner_id}}}:{unit}:{start}"


def minutes_key(owner_id):
    return f"{PREFIX}{{{owner_id}}}:minutes"


def empty():
    return defaultdict(float)


def pack(totals):
    """A bucket's totals as stored."""
    return _BUCKET.pack(*(totals.get(field, 0.0) for field in LAYOUT))


def unpack(value):
    """A bucket's totals from what is stored."""
    return _named(_BUCKET.unpack(value))


def _named(values):
    """Totals from their values in LAYOUT's order."""
    totals = empty()
    totals.update(zip(LAYOUT, map(float, values)))
    return totals


def add(totals, doc, sign=1):
    """Add one reading (a dict of its stored fields) to a bucket's flat totals."""
    if doc.get("silence"):
        totals["silent"] += sign
        return
    totals["n"] += sign
    dominant = doc["dominant"]
    totals[f"d:{dominant}"] += sign
    totals[f"di:{dominant}"] += sign * doc["intensity"]
    for name, p in doc["probabilities"].items():
        totals[f"p:{name}"] += sign * p
    for name in FIELDS:
        value = doc[name]
        totals[f"s:{name}"] += sign * value
        totals[f"q:{name}"] += sign * value * value


def apply(pipe, documents, sign=1):
    """Queue on `pipe` the addition (sign=-1: subtraction) of stored readings to their owners'
    buckets, in one script call (which sums them as add() does)."""
    minutes = {}
    for doc in documents:
        silent = bool(doc.get("silence"))
        minutes.setdefault((str(doc["owner"]), floor(epoch(doc["timestamp"]), 60)), []).extend(
            [0, ""] if silent else
            [_PLACE[doc["dominant"]], _VALUES.pack(*(doc[name] for name in FIELDS),
                                                   *(doc["probabilities"][c] for c in CLASSES))])
    if not minutes:
        return
    keys, args = [], []
    for (owner, minute), readings in minutes.items():
        keys += [*(key(owner, unit, floor(minute, seconds)) for unit, seconds in UNITS.items()), minutes_key(owner)]
        args += [minute, len(readings) // 2, *readings]
    # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
    pipe.eval(_APPLY, len(keys), *keys, sign, len(CLASSES), *args)


def forget_owner(owner_id):
    """Remove every bucket of an owner (their account is being deleted)."""
    redis = _redis()
    minutes = [int(m) for m in redis.zrange(minutes_key(owner_id), 0, -1)]
    names = {key(owner_id, unit, floor(m, seconds)) for m in minutes for unit, seconds in UNITS.items()}
    names = sorted(names) + [minutes_key(owner_id)]
    for first in range(0, len(names), 1000):
        redis.delete(*names[first:first + 1000])


def forget_all():
    """Remove every bucket of every owner (before a rebuild)."""
    redis = _redis()
    batch = []
    for name in redis.scan_iter(match=f"{PREFIX}{{*", count=1000):
        batch.append(name)
        if len(batch) == 1000:
            redis.delete(*batch)
            batch = []
    if batch:
        redis.delete(*batch)


def write_minutes(minutes):
    """Write whole buckets from (owner, minute) -> totals, adding them up to hours and days (the
    rebuild; the buckets are empty beforehand)."""
    buckets = {}
    for (owner, minute), totals in minutes.items():
        for unit, seconds in UNITS.items():
            bucket = buckets.setdefault((owner, unit, floor(minute, seconds)), empty())
            for field, value in totals.items():
                bucket[field] += value
    pipe = _redis().pipeline(transaction=False)
    for n, ((owner, unit, start), totals) in enumerate(buckets.items(), 1):
        pipe.set(key(owner, unit, start), pack(totals))
        if unit == "minute":
            pipe.zadd(minutes_key(owner), {start: start})
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


def sums(owner_id, pieces):
    """Sums of the owner's buckets by group: `pieces` is a list of (unit, start epoch s, group);
    returns {group: totals} for the groups holding readings (one MGET)."""
    if not pieces:
        return {}
    values = _redis().mget([key(owner_id, unit, start) for unit, start, _ in pieces])
    groups = {}
    for (_, _, group), value in zip(pieces, values):
        if value is not None:
            groups[group] = groups.get(group, 0.0) + np.frombuffer(value, "<f8")
    return {group: _named(vector) for group, vector in groups.items()}


def period(since, until):
    """[since, until) in whole minutes (epoch s): from the start of the minute holding `since` to
    the end of the one holding the instant before `until`."""
    end = epoch(until)
    return floor(epoch(since), 60), floor(end, 60) + (60 if end % 60 or until.microsecond else 0)


def cover(start, end, coarsest):
    """The buckets, coarsest first where they fit and none coarser than `coarsest`, that exactly
    cover the whole minutes [start, end) (epoch s): a list of (unit, start)."""
    units = [unit for unit in UNITS if UNITS[unit] <= UNITS[coarsest]]
    return _cover(start, end, units[::-1])


def _cover(start, end, units):
    if start >= end:
        return []
    unit, *finer = units
    size = UNITS[unit]
    first, last = -(-start // size) * size, floor(end, size)
    if not finer:
        return [(unit, t) for t in range(start, end, size)]
    if first >= last:
        return _cover(start, end, finer)
    return _cover(start, first, finer) + [(unit, t) for t in range(first, last, size)] + _cover(last, end, finer)


def data_span(owner_id, start, end):
    """The first and last minute (epoch s) of [start, end) in which the owner has readings, or None."""
    pipe = _redis().pipeline(transaction=False)
    pipe.zrangebyscore(minutes_key(owner_id), start, f"({end}", start=0, num=1)
    pipe.zrevrangebyscore(minutes_key(owner_id), f"({end}", start, start=0, num=1)
    first, last = pipe.execute()
    return (int(first[0]), int(last[0])) if first else None


def as_datetime(seconds_since_epoch):
    return datetime.fromtimestamp(seconds_since_epoch, UTC)
