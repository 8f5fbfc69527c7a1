"""Each user's readings summed per minute, hour and day of reading time (the bucket pattern of
time-series stores), in Redis. app/readings/store.py adds every reading it inserts and subtracts
every reading it deletes, in the Redis round trip it makes anyway; the trends and the
distribution (app/readings/stats.py) read these sums instead of the readings, so their cost
depends on the range asked for, not on how many readings are stored. `flask db rebuild-rollups`
recomputes them from the readings (after a Redis loss, or to check them).

A bucket is the hash `rollup:{<owner>}:<unit>:<start epoch s>` with `n` (non-silent readings),
`silent` (silent windows), `d:<label>` (readings with that dominant), `di:<label>` (their summed
intensity), `p:<class>` (summed probability), `s:<field>` and `q:<field>` (sum and sum of squares
of valence, arousal, intensity, confidence). Five or fifteen minutes are summed from minutes, a
week from days. `rollup:{<owner>}:minutes` is the sorted set of the minutes that hold readings.

Why Redis and not a MongoDB collection: the embedded MongoDB-wire server costs 6 ms (memory
engine) to 29 ms (SQLite) per pair of bucket upserts, as much as or more than the reading's own
insert; adding them to every write would have cut the ingest throughput by a third or more.
Here a write costs one script call for the whole batch, in the pipeline the store already sends.
"""
import calendar
import struct
from collections import defaultdict
from datetime import UTC, datetime

from flask import current_app

from ml.params import CLASSES

UNITS = {"minute": 60, "hour": 3600, "day": 86400}
FIELDS = ("valence", "arousal", "intensity", "confidence")
PREFIX = "rollup:"

# KEYS: per (owner, minute), its minute, hour and day buckets and the owner's set of minutes;
# ARGV: the sign, the class names (space-separated), then per (owner, minute): the minute's start
# and how many readings, then per reading its dominant ('' for a silent one) and its valence,
# arousal, intensity, confidence and probabilities (in the class names' order) packed as
# little-endian doubles ('' for a silent one). The sums are made here, as add() makes them:
# one call for a batch, where one command per field and bucket cost the worker more (redis-py
# packs each argument and parses each reply in Python) than the reading's insert. A bucket's
# fields are read and written whole (one HMGET, one HSET): a field at a time (HINCRBYFLOAT) cost
# Redis 40 % more CPU. A bucket left with no reading (after a deletion) is removed.
_APPLY = """
local sign = tonumber(ARGV[1])
local classes = {}
for name in string.gmatch(ARGV[2], '%S+') do classes[#classes + 1] = name end
local layout = '<' .. string.rep('d', 4 + #classes)
local names = {'valence', 'arousal', 'intensity', 'confidence'}
local i, k = 3, 0
while i <= #ARGV do
  local minute, count = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local totals, order = {}, {}
  local function add(field, value)
    if totals[field] == nil then
      totals[field] = 0
      order[#order + 1] = field
    end
    totals[field] = totals[field] + value
  end
  for _ = 1, count do
    local dominant = ARGV[i]
    if dominant == '' then
      add('silent', sign)
    else
      local v = {struct.unpack(layout, ARGV[i + 1])}
      add('n', sign)
      add('d:' .. dominant, sign)
      add('di:' .. dominant, sign * v[3])
      for c = 1, #classes do add('p:' .. classes[c], sign * v[4 + c]) end
      for f = 1, 4 do
        add('s:' .. names[f], sign * v[f])
        add('q:' .. names[f], sign * v[f] * v[f])
      end
    end
    i = i + 2
  end
  for level = 1, 3 do
    local bucket = KEYS[k + level]
    local stored = redis.call('HMGET', bucket, 'n', 'silent', unpack(order))
    local writes = {}
    for j, field in ipairs(order) do
      writes[2 * j - 1] = field
      writes[2 * j] = string.format('%.17g', (tonumber(stored[2 + j]) or 0) + totals[field])
    end
    redis.call('HSET', bucket, unpack(writes))
    local n = (tonumber(stored[1]) or 0) + (totals['n'] or 0)
    local silent = (tonumber(stored[2]) or 0) + (totals['silent'] or 0)
    if n <= 0 and silent <= 0 then
      redis.call('DEL', bucket)
      if level == 1 then redis.call('ZREM', KEYS[k + 4], minute) end
    elseif level == 1 then
      redis.call('ZADD', KEYS[k + 4], minute, minute)
    end
  end
  k = k + 4
end
"""
_VALUES = struct.Struct(f"<{len(FIELDS) + len(CLASSES)}d")


# KEYS: buckets; ARGV[i]: the group KEYS[i] is added to. Returns, per group with readings, the group
# then its field, sum pairs: the sums travel once per group, not once per bucket.
_SUM = """
local groups, order = {}, {}
for i, name in ipairs(KEYS) do
  local fields = redis.call('HGETALL', name)
  if #fields > 0 then
    local g = ARGV[i]
    local sums = groups[g]
    if not sums then
      sums = {}
      groups[g] = sums
      table.insert(order, g)
    end
    for j = 1, #fields, 2 do
      sums[fields[j]] = (sums[fields[j]] or 0) + tonumber(fields[j + 1])
    end
  end
end
local out = {}
for _, g in ipairs(order) do
  local row = {g}
  for field, value in pairs(groups[g]) do
    table.insert(row, field)
    table.insert(row, string.format('%.17g', value))
  end
  table.insert(out, row)
end
return out
"""


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
            ["", ""] if silent else
            [doc["dominant"], _VALUES.pack(*(doc[name] for name in FIELDS),
                                           *(doc["probabilities"][c] for c in CLASSES))])
    if not minutes:
        return
    keys, args = [], []
    for (owner, minute), readings in minutes.items():
        keys += [*(key(owner, unit, floor(minute, seconds)) for unit, seconds in UNITS.items()), minutes_key(owner)]
        args += [minute, len(readings) // 2, *readings]
    # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
    pipe.eval(_APPLY, len(keys), *keys, sign, " ".join(CLASSES), *args)


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
        pipe.hset(key(owner, unit, start), mapping={field: repr(value) for field, value in totals.items()})
        if unit == "minute":
            pipe.zadd(minutes_key(owner), {start: start})
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


def sums(owner_id, pieces):
    """Sums of the owner's buckets by group: `pieces` is a list of (unit, start epoch s, group);
    returns {group: totals} for the groups holding readings (added up in Redis, in one call)."""
    if not pieces:
        return {}
    script = _redis().register_script(_SUM)
    rows = script(keys=[key(owner_id, unit, start) for unit, start, _ in pieces],
                  args=[group for _, _, group in pieces])
    result = {}
    for group, *fields in rows:
        totals = empty()
        totals.update({name.decode(): float(value) for name, value in zip(fields[::2], fields[1::2])})
        result[int(group)] = totals
    return result


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
