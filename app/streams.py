"""State shared by the web process (which windows live audio) and the workers (which analyse
it): the windows of each session still waiting for inference, as a Redis sorted set, and each
pending window's audio under its own key.

The audio travels beside the RQ job rather than in it: RQ pickles, zlib-compresses and reprs
a job's arguments in the web process, which for 96 kB windows cost more CPU than everything
else the web process did per window (measured, docs/BENCHMARKS.md).
"""

# Pending windows of a stream; the web drops the oldest beyond the limit (backpressure) and a
# worker skips a window that is no longer there.
PENDING_TTL_S = 3600


def pending_key(session_id):
    return f"stream:pending:{session_id}"


def audio_key(session_id, index):
    return f"stream:audio:{session_id}:{index}"


def add_pending(redis, session_id, index, max_pending, pcm):
    """Mark a window pending with its audio; returns the indices dropped (oldest first) to
    stay within the limit, whose audio is deleted with them."""
    key = pending_key(session_id)
    pipe = redis.pipeline()
    pipe.set(audio_key(session_id, index), pcm, ex=PENDING_TTL_S)
    pipe.zadd(key, {index: index})
    pipe.expire(key, PENDING_TTL_S)
    pipe.zcard(key)
    *_, count = pipe.execute()
    excess = count - max_pending
    if excess <= 0:
        return []
    dropped = sorted(int(member) for member, _ in redis.zpopmin(key, excess))
    redis.delete(*(audio_key(session_id, i) for i in dropped))
    return dropped


def pending_audio(redis, windows):
    """The audio of each (session_id, index) still pending, or None for a window dropped
    meanwhile: one round trip for the whole batch."""
    pipe = redis.pipeline()
    for session_id, index in windows:
        pipe.zscore(pending_key(session_id), index)
        pipe.get(audio_key(session_id, index))
    replies = pipe.execute()
    return [pcm if score is not None else None for score, pcm in zip(replies[::2], replies[1::2])]


def done(pipe, session_id, index):
    """Queue on a pipeline the end of a window's wait: it is stored."""
    pipe.zrem(pending_key(session_id), index)
    pipe.delete(audio_key(session_id, index))
