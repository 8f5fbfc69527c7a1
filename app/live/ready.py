"""State shared by the web process (which windows live audio) and the workers (which analyse
it), all in Redis:

* the windows of each session still waiting for inference, as a sorted set, and each pending
  window's audio under its own key. The audio travels beside the job rather than in it: RQ
  pickles, zlib-compresses and reprs a job's arguments in the web process, which for 96 kB
  windows cost more CPU than everything else the web process did per window (measured,
  docs/BENCHMARKS.md);
* the ready list: every window of every stream, in arrival order, for the workers to take;
* the drain jobs waiting on the ready list, and a flag that says a drain job is queued and not
  yet started: the web process enqueues a new one only when no drain job is waiting and none
  is queued (app/live/drain.py drain_windows says why);
* the latest window latencies, for /api/system/stats.
"""
from redis.commands.core import Script
from rq import Queue, Retry

# Pending windows of a stream; the web drops the oldest beyond the limit (backpressure) and a
# worker skips a window that is no longer there.
PENDING_TTL_S = 3600
READY_KEY = "stream:ready"
DRAIN_QUEUED_KEY = "stream:drain-queued"
# Drain jobs blocked on the ready list, each scored with the Redis time its wait ends by.
WAITING_KEY = "stream:waiting"
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


# Puts a window on the ready list and says whether a drain job must be queued for it: none is
# waiting on the list (expired entries are of workers that died waiting) and none is queued.
# One script, so that a drain job that stops waiting either sees the window or is not counted.
_ADD = Script(None, b"""
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local count = redis.call('ZCARD', KEYS[2])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', redis.call('TIME')[1])
local claimed = 0
if redis.call('ZCARD', KEYS[4]) == 0 and redis.call('SET', KEYS[5], 1, 'NX', 'EX', ARGV[6]) then
  claimed = 1
end
return {count, claimed}
""")


def add_pending(redis, session_id, index, max_pending, pcm, descriptor):
    """Mark a window pending with its audio and put its descriptor (bytes) on the ready list.
    Returns the indices dropped (oldest first) to stay within the limit, whose audio is deleted
    with them, and whether the caller must enqueue a drain job (none is waiting or queued)."""
    key = pending_key(session_id)
    count, claimed = _ADD(keys=[audio_key(session_id, index), key, READY_KEY, WAITING_KEY, DRAIN_QUEUED_KEY],
                          args=[pcm, index, PENDING_TTL_S, descriptor, READY_MAX, DRAIN_QUEUED_TTL_S], client=redis)
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
    """Queue a job that analyses the ready windows (app/live/drain.py drain_windows); only
    after add_pending or claim_drain said to."""
    Queue("analysis", connection=redis).enqueue(
        "app.live.drain.drain_windows", description="analyse streamed windows",
        retry=Retry(max=2), result_ttl=0, failure_ttl=3600, job_timeout=60)


def claim_drain(redis):
    """True when no drain job is queued and the caller must enqueue one."""
    return bool(redis.set(DRAIN_QUEUED_KEY, 1, nx=True, ex=DRAIN_QUEUED_TTL_S))


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


# A drain job counts as waiting from just before its blocking pop until a little after the pop
# must have returned: a worker that died while waiting stops counting soon.
# Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
_WAIT = "redis.call('ZADD', KEYS[1], redis.call('TIME')[1] + tonumber(ARGV[2]), ARGV[1])"


def wait_for_window(redis, job_id, timeout_s):
    """Block up to timeout_s for the next descriptor on the ready list, held for job_id as
    take_windows holds them; counted meanwhile as a waiting drain job, for which add_pending
    queues no new one. Returns [descriptor] or [] when none came."""
    pipe = redis.pipeline(transaction=False)
    pipe.eval(_WAIT, 1, WAITING_KEY, job_id, int(timeout_s) + 2)
    pipe.blmove(READY_KEY, taken_key(job_id), timeout_s, "LEFT", "RIGHT")
    descriptor = pipe.execute()[-1]
    pipe.zrem(WAITING_KEY, job_id)
    if descriptor is not None:
        pipe.expire(taken_key(job_id), PENDING_TTL_S)
        pipe.execute()
        return [descriptor]
    pipe.execute()
    # A window added after the pop gave up but before this job stopped counting as waiting
    # queued no job: it is taken here.
    return take_windows(redis, job_id, 1)


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


# The latest per-window latencies (enqueued by the web process to stored by a worker), kept in a
# capped list for /api/system/stats.
LATENCY_KEY = "stats:window_latency_ms"
LATENCY_SAMPLES = 1000


def record_window_latencies(pipe, milliseconds):
    """Queue on a Redis pipeline the enqueue-to-stored latencies of windows (called by workers)."""
    pipe.lpush(LATENCY_KEY, *(f"{ms:.1f}" for ms in milliseconds))
    pipe.ltrim(LATENCY_KEY, 0, LATENCY_SAMPLES - 1)


def window_latencies(redis):
    """The latest LATENCY_SAMPLES window latencies, in milliseconds, newest first."""
    return [float(v) for v in redis.lrange(LATENCY_KEY, 0, -1)]
