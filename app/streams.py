"""State shared by the web process (which windows live audio) and the workers (which analyse
it): the windows of each session still waiting for inference, as a Redis sorted set."""

# Pending windows of a stream; the web drops the oldest beyond the limit (backpressure) and a
# worker skips a window that is no longer there.
PENDING_TTL_S = 3600


def pending_key(session_id):
    return f"stream:pending:{session_id}"


def add_pending(redis, session_id, index, max_pending):
    """Mark a window pending; returns the indices dropped (oldest first) to stay within the limit."""
    key = pending_key(session_id)
    pipe = redis.pipeline()
    pipe.zadd(key, {index: index})
    pipe.expire(key, PENDING_TTL_S)
    pipe.zcard(key)
    _, _, count = pipe.execute()
    excess = count - max_pending
    if excess <= 0:
        return []
    return sorted(int(member) for member, _ in redis.zpopmin(key, excess))


def is_pending(redis, session_id, index):
    return redis.zscore(pending_key(session_id), index) is not None


def done(redis, session_id, index):
    redis.zrem(pending_key(session_id), index)
