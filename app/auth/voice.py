"""Each user's voice baseline: the statistics of their earlier speech that the model adapts to
(ml/adapt.py), and the one reader and writer of it.

Where it lives: the workers read and write it in Redis (`voice:<user id>`, one key per user) on
the hot path, one MGET and one script call per batch of windows whatever their number; MongoDB
keeps it with the user (`User.voice_baseline`, `voice_baseline_updated_at`), written at most
every PERSIST_EVERY_S per user, so that losing Redis loses at most those last seconds of
speech. A user missing from Redis is loaded from MongoDB. A user who turned adaptation off has
the marker OFF in Redis: scored cold, the baseline is neither read nor changed.

Concurrent writers (a reset during a batch; two workers with windows of one user, which
happens only when one holds the user past app/live/ready.py HOLD_TTL_S) never resurrect a reset
baseline: a worker's write is a compare-and-set against the value it read, so a write that
lost the race is dropped, costing that batch's statistics only.
"""
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from bson import ObjectId
from flask import current_app
from pymongo import UpdateOne
from redis.commands.core import Script

from app.models import User
from ml import adapt, params

# Every write of a baseline to MongoDB (132 numbers) cost the embedded MongoDB-wire server as
# much as a reading's insert when it was every 5 s per streaming user (docs/BENCHMARKS.md); a
# baseline summarises minutes of speech, so the last 30 s matter little if Redis is lost.
PERSIST_EVERY_S = 30.0
# An idle user's key leaves Redis after this; MongoDB has the baseline.
TTL_S = 7 * 24 * 3600
OFF = b"off"
_TIMES = struct.Struct("<dd")  # when the baseline last changed, when it was last written to MongoDB
FRAMES_PER_SECOND = params.SAMPLE_RATE / params.STFT_HOP_SAMPLES

# KEYS: the users' keys; ARGV: TTL, then for each key the value read ("" for none) and the new one.
# Sets a key only if it still holds what was read; returns 1 or 0 per key.
_COMPARE_AND_SET = Script(None, b"""
local done = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key) or ''
  if current == ARGV[2 * i] then
    redis.call('SET', key, ARGV[2 * i + 1], 'EX', ARGV[1])
    done[i] = 1
  else
    done[i] = 0
  end
end
return done
""")


def key(user_id):
    return f"voice:{user_id}"


@dataclass
class Voice:
    """One user's baseline during a batch. history is None when adaptation is off."""
    history: np.ndarray | None
    read: bytes | None          # the Redis value it came from (None: loaded from MongoDB)
    updated_at: float = 0.0     # epoch seconds; 0: never
    persisted_at: float = 0.0
    changed: bool = False

    def add(self, stats):
        """Merge the statistics of one non-silent window (ml.adapt caps the history); a window of
        steady sound (a fan, hiss) changes nothing, so nothing is written back for it."""
        if adapt.is_steady(stats):
            return
        self.history = adapt.merge(self.history, stats)
        self.updated_at = time.time()
        self.changed = True


def _pack(history, updated_at, persisted_at):
    return np.asarray(history, "<f4").tobytes() + _TIMES.pack(updated_at, persisted_at)


def _unpack(value):
    """(history, updated_at, persisted_at) of a stored value; None for OFF or a damaged value."""
    size = adapt.STATS_SIZE * 4
    if len(value) != size + _TIMES.size:
        return None
    history = np.frombuffer(value[:size], "<f4").copy()
    if not adapt.valid(history):
        return None
    return (history, *_TIMES.unpack(value[size:]))


def _from_document(history):
    return np.asarray(history, np.float32) if history and adapt.valid(history) else adapt.empty()


def _epoch(moment):
    return moment.replace(tzinfo=UTC).timestamp() if moment else 0.0


def load(user_ids, stored=None):
    """The baselines of these users (ids as strings), for one batch: {user id: Voice}. Users
    without a key are read from MongoDB in one query; an unknown user is scored cold. `stored`:
    {user id: the value of key(user id)} when the caller has read them already, in a round trip
    it made anyway."""
    user_ids = list(dict.fromkeys(user_ids))
    if stored is None:
        stored = dict(zip(user_ids, current_app.extensions["redis"].mget([key(u) for u in user_ids])))
    voices, missing = {}, []
    for user_id in user_ids:
        value = stored[user_id]
        if value is None:
            missing.append(user_id)
            continue
        unpacked = None if value == OFF else _unpack(value)
        if unpacked is None:
            voices[user_id] = Voice(None if value == OFF else adapt.empty(), value)
        else:
            voices[user_id] = Voice(unpacked[0], value, unpacked[1], unpacked[2])
    if missing:
        found = {str(u.id): u for u in User.objects(id__in=missing).only(
            "adapt_voice", "voice_baseline", "voice_baseline_updated_at")}
        for user_id in missing:
            user = found.get(user_id)
            if user is None:
                # A deleted account: scored cold; read=OFF marks it as cached so nothing is written for it.
                voices[user_id] = Voice(None, OFF)
            elif not user.adapt_voice:
                voices[user_id] = Voice(None, None)
            else:
                at = _epoch(user.voice_baseline_updated_at)
                voices[user_id] = Voice(_from_document(user.voice_baseline), None, at, at)
    return voices


def save(voices, pipe=None):
    """Write back what a batch changed, and cache in Redis what was loaded from MongoDB. A
    baseline goes to MongoDB when it changed and its last write there is PERSIST_EVERY_S old.
    Given a Redis pipeline, the write is queued on it, and save returns what the caller must
    call with the pipeline's results once it has executed it (the writes to MongoDB follow the
    ones that succeeded in Redis)."""
    now = time.time()
    keys, argv, persist = [], [], []
    for user_id, voice in voices.items():
        if voice.read is not None and not voice.changed:
            continue
        if voice.history is None:
            value = OFF
        else:
            due = voice.changed and now - voice.persisted_at >= PERSIST_EVERY_S
            value = _pack(voice.history, voice.updated_at, now if due else voice.persisted_at)
            if due:
                persist.append((user_id, voice))
        keys.append(key(user_id))
        argv += [voice.read or b"", value]
    if not keys:
        return lambda _results: None

    def written(done):
        done = dict(zip(keys, done))
        _persist([(user_id, voice.history, voice.updated_at) for user_id, voice in persist if done[key(user_id)]])

    if pipe is None:
        return written(_COMPARE_AND_SET(keys, [TTL_S, *argv], client=current_app.extensions["redis"]))
    index = len(pipe)
    # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
    pipe.eval(_COMPARE_AND_SET.script, len(keys), *keys, TTL_S, *argv)
    return lambda results: written(results[index])


def _persist(items):
    if items:
        User._get_collection().bulk_write([
            UpdateOne({"_id": ObjectId(user_id)},
                      {"$set": {"voice_baseline": [float(v) for v in history],
                                "voice_baseline_updated_at": datetime.fromtimestamp(updated_at, UTC)}})
            for user_id, history, updated_at in items], ordered=False)


def summary(user):
    """What the profile shows: whether a baseline exists, how much speech it has heard, when it
    last changed. Redis is newer than MongoDB when it has the user's baseline."""
    value = current_app.extensions["redis"].get(key(user.id))
    unpacked = _unpack(value) if value is not None and value != OFF else None
    if unpacked is not None:
        history, updated_at = unpacked[0], (datetime.fromtimestamp(unpacked[1], UTC) if unpacked[1] else None)
    else:
        history, updated_at = _from_document(user.voice_baseline), user.voice_baseline_updated_at
    frames = float(history[adapt.MEL_COUNT])
    return {"exists": frames > 0, "speech_seconds": round(frames / FRAMES_PER_SECOND, 2),
            "updated_at": updated_at if frames > 0 else None}


def set_adaptation(user, on):
    """Turn adaptation on or off. Turning it off first writes to MongoDB what Redis has not yet
    persisted, so the baseline is kept whole while unused; turning it on reloads it from there."""
    redis = current_app.extensions["redis"]
    if on:
        redis.delete(key(user.id))
        return
    value = redis.get(key(user.id))
    unpacked = _unpack(value) if value is not None and value != OFF else None
    if unpacked is not None and unpacked[1] > unpacked[2]:
        _persist([(str(user.id), unpacked[0], unpacked[1])])
    redis.set(key(user.id), OFF, ex=TTL_S)


def reset(user):
    """Forget the baseline. Redis gets an explicit empty value (or OFF), never a deletion, so a
    worker's write of what it read before the reset fails its compare-and-set."""
    value = _pack(adapt.empty(), 0.0, time.time()) if user.adapt_voice else OFF
    current_app.extensions["redis"].set(key(user.id), value, ex=TTL_S)
    User.objects(id=user.id).update(unset__voice_baseline=True, unset__voice_baseline_updated_at=True)


def forget(user):
    """Delete the baseline from Redis with the account (MongoDB's goes with the user document)."""
    current_app.extensions["redis"].delete(key(user.id))
