"""Each session's readings in compact form, in Redis: what the session's analytics, insights and
session-scoped trends read instead of the readings (the embedded MongoDB-wire server takes about
0.15 ms per document read, so a session of an hour's readings cost over half a second).

`series:{<session>}` is a hash: one field per reading (its id), 134 bytes or so each (packed with
struct), plus the field `_` that marks the hash complete. `series:{<session>}:v` is a token that
app/readings/store.py replaces whenever the session's readings change; what is computed from a
series (app/sessions/summary.py) is cached with the token it was computed at and is valid while
the token is the same.

A series is built from the readings on first use (under WATCH of the token, so a reading stored
meanwhile is never lost), lives SERIES_TTL_S after its last use (its token and cache too), and the store adds each new
reading to it only when it exists: a missing series is rebuilt, never partial.
"""
import calendar
import math
import struct
import uuid
from datetime import UTC, datetime

import redis as redis_lib
from flask import current_app

from app.models import SILENCE, EmotionReading
from ml.params import CLASSES

SERIES_TTL_S = 7 * 24 * 3600
COMPLETE = b"_"
LABELS = (*CLASSES, SILENCE)
# timestamp (ms), window index (-1: none), window end (NaN: none), silent, label, valence, arousal,
# intensity, confidence, the 8 probabilities; then the window key's prefix (the stream or upload).
_ENTRY = struct.Struct(f"<qqd?B{4 + len(CLASSES)}d")
FIELDS = ("timestamp", "window_key", "window_end", "silence", "dominant", "probabilities", "valence", "arousal",
          "intensity", "confidence", "session")

# KEYS: the series, its token; ARGV: the new token, its time to live, then reading id, entry pairs.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 1 and #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
"""


def _redis():
    return current_app.extensions["redis"]


def series_key(session_id):
    return f"series:{{{session_id}}}"


def token_key(session_id):
    return f"series:{{{session_id}}}:v"


def cache_key(session_id):
    """Where what is computed from the series is cached (app/sessions/summary.py)."""
    return f"series:{{{session_id}}}:summary"


def new_token():
    return uuid.uuid4().hex


def pack(doc):
    """A stored reading (a dict of its fields) as a series entry."""
    moment = doc["timestamp"]
    # To the millisecond, truncated, as MongoDB stores it.
    milliseconds = calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000
    prefix, _, index = (doc.get("window_key") or "").rpartition(":")
    silent = bool(doc.get("silence"))
    probabilities = [0.0] * len(CLASSES) if silent else [doc["probabilities"][c] for c in CLASSES]
    end = doc.get("window_end")
    values = [0.0] * 4 if silent else [doc[name] for name in ("valence", "arousal", "intensity", "confidence")]
    return _ENTRY.pack(milliseconds, int(index) if index.isdigit() else -1,
                       math.nan if end is None else end, silent, LABELS.index(doc["dominant"]),
                       *values, *probabilities) + prefix.encode()


def unpack(entry):
    """A series entry as the reading dict app.sessions.analytics takes, with window_end, index and
    segment (the window key's prefix: which stream or upload), and silence."""
    ms, index, end, silent, label, valence, arousal, intensity, confidence, *probabilities = \
        _ENTRY.unpack_from(entry)
    return {
        "timestamp": datetime.fromtimestamp(ms / 1000, UTC),
        "index": None if index < 0 else index,
        "window_end": None if math.isnan(end) else end,
        "segment": entry[_ENTRY.size:].decode() or None,
        "silence": silent,
        "dominant": LABELS[label],
        "probabilities": None if silent else dict(zip(CLASSES, probabilities)),
        "valence": None if silent else valence,
        "arousal": None if silent else arousal,
        "intensity": None if silent else intensity,
        "confidence": None if silent else confidence,
    }


def append(pipe, documents):
    """Queue on `pipe`: add stored readings to their sessions' series (where one exists) and
    replace those sessions' tokens."""
    by_session = {}
    for doc in documents:
        if doc.get("session") is not None:
            by_session.setdefault(str(doc["session"]), []).extend([str(doc["_id"]), pack(doc)])
    for session_id, fields in by_session.items():
        # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
        pipe.eval(_APPEND, 2, series_key(session_id), token_key(session_id), new_token(), SERIES_TTL_S, *fields)


def renew(session_id):
    """Replace the session's token, keeping its series: what was computed from it also depends on
    the session's start and end (app/sessions/summary.py), and its end just changed."""
    _redis().set(token_key(session_id), new_token(), ex=SERIES_TTL_S)


def invalidate(pipe, session_ids):
    """Queue on `pipe`: drop the series of sessions whose readings were deleted, and replace their
    tokens (the next use rebuilds the series from the readings left)."""
    for session_id in session_ids:
        pipe.delete(series_key(session_id))
        pipe.set(token_key(session_id), new_token(), ex=SERIES_TTL_S)


def forget(session_ids):
    """Remove the series and tokens of deleted sessions."""
    names = [name for sid in session_ids for name in (series_key(sid), token_key(sid), cache_key(sid))]
    for first in range(0, len(names), 1000):
        _redis().delete(*names[first:first + 1000])


def forget_all():
    """Remove every series and token (before a rebuild; series are rebuilt on first use)."""
    redis = _redis()
    names = list(redis.scan_iter(match="series:{*", count=1000))
    for first in range(0, len(names), 1000):
        redis.delete(*names[first:first + 1000])


def _from_readings(session_id):
    query = EmotionReading.objects(session=session_id).only(*FIELDS).as_pymongo()
    return {str(doc["_id"]): pack(doc) for doc in query}


_ANY = object()


def load(session_id, computed=None, expect=_ANY):
    """The session's series entries (unordered) and its token. With `computed`, a function of the
    entries, also returns its result, and whether it was computed at the token returned (False
    when the readings changed meanwhile: the result is then right for some moment during the call,
    but must not be cached under the token). `expect`: the token (bytes, or None for none) as read
    before what `computed` uses besides the entries was read; another token means that changed
    meanwhile, and the result is not current either."""
    redis = _redis()
    name, token_name = series_key(session_id), token_key(session_id)
    with redis.pipeline() as pipe:
        try:
            pipe.watch(token_name)
            token = pipe.get(token_name)
            unchanged = expect is _ANY or token == expect
            entries = pipe.hgetall(name)
            built = None
            if COMPLETE not in entries:
                built = _from_readings(session_id)
                entries = built
            else:
                del entries[COMPLETE]
            values = list(entries.values())
            result = computed(values) if computed else None
            pipe.multi()
            if token is None:
                token = new_token().encode()
            # The token outlives nothing computed under it: both expire together.
            pipe.set(token_name, token, ex=SERIES_TTL_S)
            if built is not None:
                pipe.hset(name, mapping={COMPLETE: b"", **built})
            pipe.expire(name, SERIES_TTL_S)
            pipe.execute()
            return values, token.decode(), result, unchanged
        except redis_lib.WatchError:
            return values, None, result, False
