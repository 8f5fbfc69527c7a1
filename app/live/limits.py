"""Per-user limits of the live channel. Shared by every web process through Redis: concurrent
connections, concurrent streams, and sessions created per minute (settings in config.py,
STREAM_MAX_CONNECTIONS_PER_USER, STREAM_MAX_STREAMS_PER_USER, STREAM_SESSIONS_PER_MINUTE).
Per web process: the pace at which a user's audio is read (Pace, STREAM_USER_AUDIO_SPEED).

A connection or a stream holds a slot until it ends or its access token expires, whichever
comes first: a slot that a crashed web process never gave back frees itself, and a connection
whose token has expired can start no stream, so it need not count.
"""
import time
from dataclasses import dataclass, field

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


@dataclass
class Pace:
    """A token bucket of seconds of audio, one per user in a web process: a user's streams
    together are read at most `speed` times real time, after a burst of `burst` seconds (a
    client catching up after a network stall, a short file sent at once). Beyond it, the
    connection's events are handled later (its handler waits), so TCP flow control holds the
    sender back: a flooding client costs the web process no more than that pace, and is slowed
    rather than cut off (the CLI's --fast stream is paced, not refused)."""
    speed: float
    burst: float
    tokens: float = None
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        if self.tokens is None:
            self.tokens = self.burst

    def delay(self, seconds):
        """Take `seconds` of audio; returns how long to wait before handling it."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.speed) - seconds
        self.at = now
        return max(0.0, -self.tokens / self.speed)
