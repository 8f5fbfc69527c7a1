"""Per-user limits of the live channel, shared by every web process through Redis: concurrent
connections, concurrent streams, and sessions created per minute (settings in config.py,
STREAM_MAX_CONNECTIONS_PER_USER, STREAM_MAX_STREAMS_PER_USER, STREAM_SESSIONS_PER_MINUTE).

A connection or a stream holds a slot until it ends or its access token expires, whichever
comes first: a slot that a crashed web process never gave back frees itself, and a connection
whose token has expired can start no stream, so it need not count.
"""
import time

from redis.commands.core import Script

CONNECTIONS, STREAMS = "connections", "streams"


def _slots_key(kind, user_id):
    return f"live:{kind}:{user_id}"


def _sessions_key(user_id):
    return f"live:sessions:{user_id}"


# Slots are a sorted set scored with the time each is held until (the token's expiry).
_ACQUIRE = Script(None, b"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local lifetime = math.ceil(tonumber(ARGV[3]) - tonumber(ARGV[1]))
if redis.call('TTL', KEYS[1]) < lifetime then redis.call('EXPIRE', KEYS[1], lifetime) end
return 1
""")


def acquire(redis, kind, user_id, holder, until, limit):
    """Take one of the user's `limit` slots of `kind` for `holder` (a connection id) until the
    epoch time `until`; False when all are held."""
    return bool(_ACQUIRE(keys=[_slots_key(kind, user_id)], args=[time.time(), holder, until, limit], client=redis))


def release(redis, kind, user_id, holder):
    redis.zrem(_slots_key(kind, user_id), holder)


# The sessions a user created in the last minute, scored with their creation times: one is
# added only while fewer than the limit are there; otherwise the seconds until the oldest ages out.
_NEW_SESSION = Script(None, b"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + 60 - tonumber(ARGV[1]))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], 61)
return false
""")


def new_session_allowed(redis, user_id, per_minute, holder):
    """Count a session created now by `holder` (a connection id); None when allowed, else the
    seconds until the next one is."""
    now = time.time()
    wait = _NEW_SESSION(keys=[_sessions_key(user_id)], args=[now, per_minute, f"{holder}:{now}"], client=redis)
    return None if wait is None else max(0.1, round(float(wait), 1))
