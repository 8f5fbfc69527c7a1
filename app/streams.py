"""State shared by the web process (which windows live audio) and the workers (which analyse
it), all in Redis:

* the windows of each session still waiting for inference, as a sorted set, and each pending
  window's audio under its own key. The audio travels beside the job rather than in it: RQ
  pickles, zlib-compresses and reprs a job's arguments in the web process, which for 96 kB
  windows cost more CPU than everything else the web process did per window (measured,
  docs/BENCHMARKS.md);
* the ready list: every window of every stream, in arrival order, for the workers to take;
* a flag that says a drain job is queued and not yet started, so the web process enqueues a
  new one only when none is (app/tasks/analysis.py drain_windows says why).
"""
from redis.commands.core import Script
from rq import Queue, Retry

# Pending windows of a stream; the web drops the oldest beyond the limit (backpressure) and a
# worker skips a window that is no longer there.
PENDING_TTL_S = 3600
READY_KEY = "stream:ready"
DRAIN_QUEUED_KEY = "stream:drain-queued"
# The ready list keeps the newest this many descriptors, so that it stays bounded while no
# worker runs. Backpressure keeps at most STREAM_MAX_PENDING windows of each stream pending,
# so past that size the oldest entries are of windows dropped already (with 10 pending per
# stream, this trims a window still pending only beyond 10,000 streams).
READY_MAX = 100_000
# A drain job waits in the queue at most about this long while the workers are busy; if the
# flag outlived an enqueue that never happened, new windows queue a job again after it.
DRAIN_QUEUED_TTL_S = 10


def pending_key(session_id):
    return f"stream:pending:{session_id}"


def audio_key(session_id, index):
    return f"stream:audio:{session_id}:{index}"


def taken_key(job_id):
    return f"stream:taken:{job_id}"


def add_pending(redis, session_id, index, max_pending, pcm, descriptor):
    """Mark a window pending with its audio and put its descriptor (bytes) on the ready list.
    Returns the indices dropped (oldest first) to stay within the limit, whose audio is deleted
    with them, and whether the caller must enqueue a drain job (none was queued)."""
    key = pending_key(session_id)
    pipe = redis.pipeline()
    pipe.set(audio_key(session_id, index), pcm, ex=PENDING_TTL_S)
    pipe.zadd(key, {index: index})
    pipe.expire(key, PENDING_TTL_S)
    pipe.zcard(key)
    pipe.rpush(READY_KEY, descriptor)
    pipe.ltrim(READY_KEY, -READY_MAX, -1)
    _mark_drain_queued(pipe)
    *_, count, _, _, claimed = pipe.execute()
    excess = count - max_pending
    if excess <= 0:
        return [], bool(claimed)
    dropped = sorted(int(member) for member, _ in redis.zpopmin(key, excess))
    redis.delete(*(audio_key(session_id, i) for i in dropped))
    return dropped, bool(claimed)


def drain_started(redis):
    """A drain job has left the queue: the next window queues another (for another worker)."""
    redis.delete(DRAIN_QUEUED_KEY)


def enqueue_drain(redis):
    """Queue a job that analyses the ready windows (app/tasks/analysis.py drain_windows); only
    after add_pending or claim_drain said to."""
    Queue("analysis", connection=redis).enqueue(
        "app.tasks.analysis.drain_windows", description="analyse streamed windows",
        retry=Retry(max=2), result_ttl=0, failure_ttl=3600, job_timeout=60)


def _mark_drain_queued(client):
    """Mark a drain job queued unless one is (on a client: True when the caller marked it and
    must enqueue the job; on a pipeline, that answer comes with its results)."""
    return client.set(DRAIN_QUEUED_KEY, 1, nx=True, ex=DRAIN_QUEUED_TTL_S)


def claim_drain(redis):
    """True when no drain job is queued and the caller must enqueue one."""
    return bool(_mark_drain_queued(redis))


# Windows a job took and has not finished stay under its own key, so a retry of that job
# (after an error, or after its worker died) analyses them again instead of losing them.
_TAKE = Script(None, b"""
local taken = redis.call('LRANGE', KEYS[2], 0, -1)
if #taken > 0 then return taken end
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not item then break end
  taken[#taken + 1] = item
end
if #taken > 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return taken
""")


def take_windows(redis, job_id, max_count):
    """Up to max_count descriptors from the ready list, oldest first, held for job_id; or
    what job_id took before and did not finish. One atomic round trip."""
    return _TAKE(keys=[READY_KEY, taken_key(job_id)], args=[max_count, PENDING_TTL_S], client=redis)


def ready_count(redis):
    return redis.llen(READY_KEY)


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


def taken_done(pipe, job_id):
    """Queue on a pipeline the end of what job_id took: every window of it is stored or skipped."""
    pipe.delete(taken_key(job_id))
