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
import struct
import time
from collections import Counter
from datetime import timedelta

from flask import current_app

from app.models.base import utcnow
from ml.params import CLASSES

SUMS = ("valence", "arousal", "intensity")
# A second's totals outlive the window by this much, for snapshots taken a little late.
BUCKET_SLACK_S = 120


def _bucket_keys(second):
    key = f"collective:{second}"
    return key, f"{key}:users", f"{key}:sessions"


def _second(timestamp):
    return calendar.timegm(timestamp.utctimetuple())


# KEYS: per second of reading time, its totals, its users and its sessions (three keys a second);
# ARGV: the sign, the class names (space-separated), how many seconds, the time each second's keys
# expire at, then per reading: which second (1-based), its dominant, owner and session ('' for
# none), and its valence, arousal, intensity and probabilities (in the class names' order) packed
# as little-endian doubles. One call for a batch: each HINCRBY sent on its own cost the worker
# more (redis-py packs a command and parses its reply in Python) than the reading's insert. The
# batch's readings are summed per second first, and a second's sums read and written whole (one
# HMGET, one HSET): a field at a time (HINCRBYFLOAT) cost Redis twice the CPU.
_TALLY = """
local sign = tonumber(ARGV[1])
local classes = {}
for name in string.gmatch(ARGV[2], '%S+') do classes[#classes + 1] = 'p:' .. name end
local seconds = tonumber(ARGV[3])
local layout = '<' .. string.rep('d', 3 + #classes)
local fields = {'valence', 'arousal', 'intensity'}
for j = 1, #classes do fields[3 + j] = classes[j] end
local counts, sums, users, sessions = {}, {}, {}, {}
for s = 1, seconds do
  counts[s], users[s], sessions[s] = {}, {}, {}
  sums[s] = {}
  for j = 1, #fields do sums[s][j] = 0 end
end
local function bump(t, field)
  t[field] = (t[field] or 0) + sign
end
for i = 4 + seconds, #ARGV, 5 do
  local s = tonumber(ARGV[i])
  bump(counts[s], 'count')
  bump(counts[s], 'd:' .. ARGV[i + 1])
  bump(users[s], ARGV[i + 2])
  if ARGV[i + 3] ~= '' then bump(sessions[s], ARGV[i + 3]) end
  local values = {struct.unpack(layout, ARGV[i + 4])}
  for j = 1, #fields do sums[s][j] = sums[s][j] + sign * values[j] end
end
for s = 1, seconds do
  local k = 3 * s - 2
  for field, n in pairs(counts[s]) do redis.call('HINCRBY', KEYS[k], field, n) end
  local stored = redis.call('HMGET', KEYS[k], unpack(fields))
  local writes = {}
  for j, field in ipairs(fields) do
    writes[2 * j - 1] = field
    writes[2 * j] = string.format('%.17g', (tonumber(stored[j]) or 0) + sums[s][j])
  end
  redis.call('HSET', KEYS[k], unpack(writes))
  for member, n in pairs(users[s]) do redis.call('HINCRBY', KEYS[k + 1], member, n) end
  for member, n in pairs(sessions[s]) do redis.call('HINCRBY', KEYS[k + 2], member, n) end
  for j = 0, 2 do redis.call('EXPIREAT', KEYS[k + j], ARGV[3 + s]) end
end
"""
_VALUES = struct.Struct(f"<{3 + len(CLASSES)}d")


def tally(pipe, documents, sign=1):
    """Queue on `pipe` the addition of stored readings (dicts of their stored fields; sign=-1:
    the removal of deleted ones) to the running totals, in one script call; silent readings and
    readings older than the window (and its slack) count for nothing."""
    window_s = 60 * current_app.config["COLLECTIVE_WINDOW_MINUTES"] + BUCKET_SLACK_S
    horizon = time.time() - window_s
    seconds, readings = {}, []
    for doc in documents:
        second = _second(doc["timestamp"])
        if doc.get("silence") or second < horizon:
            continue
        probabilities = doc["probabilities"]
        readings += [seconds.setdefault(second, len(seconds) + 1), doc["dominant"], str(doc["owner"]),
                     "" if doc.get("session") is None else str(doc["session"]),
                     _VALUES.pack(*(doc[name] for name in SUMS), *(probabilities[c] for c in CLASSES))]
    if readings:
        # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
        pipe.eval(_TALLY, 3 * len(seconds), *(key for second in seconds for key in _bucket_keys(second)),
                  sign, " ".join(CLASSES), len(seconds), *(int(second + window_s) for second in seconds), *readings)


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
