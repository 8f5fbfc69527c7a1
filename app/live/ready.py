"""State shared by the web process (which windows live audio) and the workers (which analyse
it), all in Redis:

* the windows of each session still waiting for inference, as a sorted set of indices, each
  pending window's descriptor in a hash of its own and its audio in a string key of its own.
  The audio travels beside the job rather than in it: RQ pickles, zlib-compresses and reprs a
  job's arguments in the web process, which for 96 kB windows cost more CPU than everything
  else the web process did per window. Nor does it pass through the Lua scripts below: handing
  a script 96 kB, or returning 96 kB from one, cost Redis 110-130 us, where a plain SET or GET
  of it costs 2-16 us (measured, docs/BENCHMARKS.md);
* the ready set: every pending window of every stream, scored for fair draining (below);
* the drain jobs waiting for windows, and a flag that says a drain job is queued and not yet
  started: the web process enqueues a new one only when no drain job is waiting and none is
  queued (app/live/drain.py drain_windows says why);
* the frames each stream's latest analysed window hands on to its next (app.analysis.model.Carry),
  for FRAMES_TTL_S;
* the latest window latencies, for /api/system/stats.

Fair draining across users (start-time fair queueing): a window is scored max(V, F(user)) + 1,
where V is the score of the last window a worker took and F(user) the score of that user's
previous window. A user who sends one window a second gets V + 1, ahead of every window of a
user who sends far more (whose scores run ahead of V by their backlog), so workers take
windows round-robin over the users that have some waiting, and one user's flood waits behind
everyone else's windows instead of in front of them. A user's own windows keep their order,
and go to one job at a time: a job holds the users whose windows it took until it has stored
them, so that several workers never analyse one user's windows side by side (their readings
and `emotion` events would come out of order, and a window would miss the voice baseline of
the one before it).

Every step is one Lua script (atomic), in one round trip with the plain reads and writes of
the audio beside it. The scripts reach keys named from their arguments (a window's hash from
its member), which a Redis Cluster would not allow; the app uses one Redis (RQ needs no more).
"""
from rq import Queue, Retry

# Pending windows of a stream; the web drops the oldest beyond the limit (backpressure) and a
# worker skips a window that is no longer there.
PENDING_TTL_S = 3600
READY_KEY = "stream:ready"
# V: the score of the last window taken, and each user's last score (F), for fair draining.
CLOCK_KEY = "stream:clock"
# Drain jobs block on this list for the next window; it holds one entry while windows wait.
# The window that rings it also sets LINGER_KEY for the moment that the drain job woken waits
# for more windows to batch (app/live/drain.py): new windows then ring for no other job, and
# join its batch. The job's take ends it (set here, not by the job: a round trip fewer a batch).
BELL_KEY = "stream:bell"
LINGER_KEY = "stream:lingering"
DRAIN_QUEUED_KEY = "stream:drain-queued"
# Drain jobs blocked on the bell, each scored with the Redis time its wait ends by.
WAITING_KEY = "stream:waiting"
# The ready set keeps at most this many windows (the oldest go), so that it stays bounded
# while no worker runs: windows dropped by backpressure leave it, so only streams abandoned
# with windows pending (whose hashes expire) leave entries behind.
READY_MAX = 100_000
# A drain job waits in the queue at most about this long while the workers are busy; if the
# flag outlived an enqueue that never happened, new windows queue a job again after it.
DRAIN_QUEUED_TTL_S = 10

# A job holds the users of the windows it took until it is done with them (_TAKE); a hold lapses
# after HOLD_TTL_S, far beyond a batch's work, so that a job whose worker died frees its users.
HOLD_PREFIX = "stream:hold:"
HOLD_TTL_S = 10
# A take looks this many times as far as it takes, past windows of users that other jobs hold.
TAKE_SCAN_FACTOR = 8

# What add_pending found instead of adding the window.
TOKEN_REVOKED, ACCOUNT_GONE = 1, 2


def pending_key(session_id):
    return f"stream:pending:{session_id}"


def window_key(session_id, index):
    """The hash of a pending window (fields d: its descriptor, u: its user)."""
    return f"stream:window:{session_id}:{index}"


def audio_key(session_id, index):
    """A pending window's audio (s16le)."""
    return f"stream:audio:{session_id}:{index}"


def frames_key(session_id):
    """What a stream's latest analysed window hands on to its next (app.analysis.model.Carry)."""
    return f"stream:frames:{session_id}"


# The frames a window hands on are kept this long: a window comes every second while a stream
# goes on, and frames computed from a user's audio should not outlast it by much.
FRAMES_TTL_S = 30


def finish_key(user_id):
    return f"stream:finish:{user_id}"


def taken_key(job_id):
    return f"stream:taken:{job_id}"


# Stops at a revoked token or a deleted account (KEYS[8], KEYS[9]; KEYS[12] with ARGV[11]: a
# token version revoked by app/auth/tokens.py revoke_all; the live check of
# app/live/handlers.py, once per window, i.e. per second of audio, at no extra round trip),
# and deletes the window's audio (KEYS[13], set just before in the same round trip). Else
# stores the window's descriptor, scores it on the ready set (fair draining), drops the stream's
# oldest windows beyond the limit with their audio (ARGV[4]), rings the bell for a waiting drain
# job (unless one lingers for more windows already, KEYS[11], which ringing sets for ARGV[12]
# ms), and says whether a drain job must be queued: none is waiting (expired entries are of
# workers that died waiting) and none is queued. One script, so that a drain job that stops waiting either sees
# the window or is not counted.
_ADD = """
local stopped = 0
if KEYS[9] ~= '' and redis.call('EXISTS', KEYS[9]) == 1 then stopped = 2
elseif KEYS[8] ~= '' and redis.call('EXISTS', KEYS[8]) == 1 then stopped = 1
elseif KEYS[12] ~= '' and tonumber(redis.call('GET', KEYS[12]) or '0') > tonumber(ARGV[11]) then stopped = 1 end
if stopped > 0 then
  redis.call('DEL', KEYS[13])
  return {stopped, 0}
end
local ttl = ARGV[2]
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'u', ARGV[7])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ttl)
local score = math.max(tonumber(redis.call('GET', KEYS[6]) or '0'), tonumber(redis.call('GET', KEYS[7]) or '0')) + 1
redis.call('SET', KEYS[7], score, 'EX', ttl)
redis.call('ZADD', KEYS[3], score, ARGV[8] .. ARGV[1])
local result = {0, 0}
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #oldest, 2 do
    redis.call('DEL', ARGV[9] .. oldest[i], ARGV[4] .. oldest[i])
    redis.call('ZREM', KEYS[3], ARGV[8] .. oldest[i])
    result[#result + 1] = tonumber(oldest[i])
  end
end
if redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[10]) then
  redis.call('ZPOPMIN', KEYS[3], redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[10]))
end
if redis.call('LLEN', KEYS[10]) == 0 and redis.call('EXISTS', KEYS[11]) == 0 then
  redis.call('RPUSH', KEYS[10], 1)
  if tonumber(ARGV[12]) > 0 then redis.call('SET', KEYS[11], 1, 'PX', tonumber(ARGV[12]) + 50) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', redis.call('TIME')[1])
if redis.call('ZCARD', KEYS[4]) == 0 and redis.call('SET', KEYS[5], 1, 'NX', 'EX', ARGV[6]) then
  result[2] = 1
end
return result
"""


def add_pending(redis, session_id, user_id, index, max_pending, pcm, descriptor, revoked_key="", gone_key="",
                version_key="", token_version=0, linger_ms=0):
    """Mark a window pending with its descriptor (bytes) and audio and put it on the ready set,
    unless revoked_key (the stream's token in the revocation list) or gone_key (its account
    deleted) exists, or version_key (the user's token version) holds a version above
    token_version (all the user's earlier tokens revoked: password change, sign out everywhere)
    ('' for no check). A window that wakes a drain job holds new windows' bell back for
    linger_ms, the job's wait for more (STREAM_BATCH_WAIT_MS). One round trip. Returns
    (stopped, dropped, claimed): TOKEN_REVOKED or ACCOUNT_GONE or 0; the indices dropped
    (oldest first) to stay within the limit, deleted with their audio; and whether the caller
    must enqueue a drain job (none waiting or queued)."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(audio_key(session_id, index), pcm, ex=PENDING_TTL_S)
    keys = [window_key(session_id, index), pending_key(session_id), READY_KEY, WAITING_KEY, DRAIN_QUEUED_KEY,
            CLOCK_KEY, finish_key(user_id), revoked_key, gone_key, BELL_KEY, LINGER_KEY, version_key,
            audio_key(session_id, index)]
    # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
    pipe.eval(_ADD, len(keys), *keys, index, PENDING_TTL_S, descriptor, audio_key(session_id, ""), max_pending,
              DRAIN_QUEUED_TTL_S, user_id, f"{session_id}:", window_key(session_id, ""), READY_MAX,
              int(token_version), int(linger_ms))
    stopped, claimed, *dropped = pipe.execute()[1]
    return stopped, dropped, bool(claimed)


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


# Windows wait, no drain job waits for them and none is queued: claimed as add_pending claims.
_STRANDED = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', redis.call('TIME')[1])
if redis.call('ZCARD', KEYS[1]) > 0 and redis.call('ZCARD', KEYS[2]) == 0
   and redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[1]) then
  return 1
end
return 0
"""


def claim_stranded(redis):
    """True when windows wait on the ready set with no drain job waiting or queued, and the
    caller must enqueue one. New windows queue a job after a lost enqueue (a web process that
    died between its claim and its enqueue) only once the flag has expired, so a stream's last
    windows would wait for ever without this check (cron's, app/live/drain.py restart_drain)."""
    return bool(redis.eval(_STRANDED, 3, READY_KEY, WAITING_KEY, DRAIN_QUEUED_KEY, DRAIN_QUEUED_TTL_S))


# Windows a job took and has not finished stay under its own key, so a retry of that job
# (after an error, or after its worker died) analyses them again instead of losing them.
# A job holds the users whose windows it took (KEYS[5] prefix, ARGV[6] the job) until it is done
# with them (taken_done): other jobs pass their windows by, so a user's windows are analysed one
# batch after another, stored and emitted in order, each scored with the voice baseline of the
# windows before it. The scan looks at most ARGV[7] of the lowest scores; a hold lapses after
# ARGV[8] s (a job whose worker died). A job back from a batch takes nothing while some but fewer
# than ARGV[9] windows wait: it waits for more, the linger flag set for ARGV[10] ms (returns their
# number). A batch's fixed costs are those of about four windows (app/live/drain.py), and a job
# that took each small backlog at once made batches of two. Returns, per window taken, its member, descriptor and
# user; none of them for a window dropped meanwhile (backpressure) and for an account deleted
# meanwhile (ARGV[4], a window then forgotten at once, its audio with it: ARGV[5]).
_TAKE = """
redis.call('DEL', KEYS[4])
local taken = redis.call('LRANGE', KEYS[2], 0, -1)
if #taken == 0 and tonumber(ARGV[9]) > 0 then
  local waiting = redis.call('ZCARD', KEYS[1])
  if waiting > 0 and waiting < tonumber(ARGV[9]) then
    redis.call('SET', KEYS[4], 1, 'PX', tonumber(ARGV[10]) + 50)
    return waiting
  end
end
local out, state = {}, {}
-- A user's state, looked up once a take: 'gone' (deleted), 'passed' (held by another job, unless
-- this job must have the window back: `keep`) or 'held' (by this job, from now on).
local function user_state(user, keep)
  if not state[user] then
    if redis.call('EXISTS', ARGV[4] .. user) == 1 then state[user] = 'gone'
    else
      local holder = redis.call('GET', KEYS[5] .. user)
      if holder and holder ~= ARGV[6] and not keep then state[user] = 'passed'
      else
        redis.call('SET', KEYS[5] .. user, ARGV[6], 'EX', ARGV[8])
        state[user] = 'held'
      end
    end
  end
  return state[user]
end
-- Puts a window in the reply with its descriptor and user (none for a window dropped meanwhile,
-- or of an account deleted: the window then forgotten, its audio with it); false, and nothing
-- in the reply, for a window whose user another job holds, unless `keep`.
local function take(member, keep)
  local window = redis.call('HMGET', ARGV[3] .. member, 'd', 'u')
  local user_is = window[2] and user_state(window[2], keep)
  if user_is == 'passed' then return false end
  if user_is == 'gone' then
    redis.call('DEL', ARGV[3] .. member, ARGV[5] .. member)
    window = {false, false}
  end
  out[#out + 1] = {member, window[1], window[2]}
  return true
end
if #taken == 0 then
  local last
  local ready = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[7]) - 1, 'WITHSCORES')
  for i = 1, #ready, 2 do
    if #taken >= tonumber(ARGV[1]) then break end
    if take(ready[i], false) then
      redis.call('ZREM', KEYS[1], ready[i])
      taken[#taken + 1] = ready[i]
      last = ready[i + 1]
    end
  end
  if #taken > 0 then
    redis.call('RPUSH', KEYS[2], unpack(taken))
    redis.call('EXPIRE', KEYS[2], ARGV[2])
    redis.call('SET', KEYS[3], last)
  end
  return out
end
for _, member in ipairs(taken) do take(member, true) end
return out
"""


def queue_take(pipe, job_id, max_count, gone_prefix, fewer_than=0, linger_ms=0):
    """Queue on a pipeline the taking of up to max_count windows from the ready set, fairly across
    users (the lowest scores first) but for users another job holds, held for job_id with their
    users; or of what job_id took before and did not finish (atomic). Its reply is what was
    taken, for with_audio; or, when some windows but fewer than `fewer_than` wait and job_id
    holds none, their number: nothing is taken, and new windows ring for no other job for
    linger_ms, while job_id waits that long for more (as the job that the bell wakes does)."""
    # Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
    pipe.eval(_TAKE, 5, READY_KEY, taken_key(job_id), CLOCK_KEY, LINGER_KEY, HOLD_PREFIX, max_count, PENDING_TTL_S,
              window_key("", "")[:-1], gone_prefix, audio_key("", "")[:-1], job_id, max_count * TAKE_SCAN_FACTOR,
              HOLD_TTL_S, fewer_than, linger_ms)


def take_windows(redis, job_id, max_count, gone_prefix):
    """queue_take in a round trip of its own, taking whatever waits."""
    pipe = redis.pipeline(transaction=False)
    queue_take(pipe, job_id, max_count, gone_prefix)
    return pipe.execute()[0]


def users_of(taken):
    """The users (ids as strings) of the windows taken that are still there, each once."""
    return list(dict.fromkeys(user.decode() for _, descriptor, user in taken if descriptor))


def sessions_of(taken):
    """The sessions of the windows taken that are still there, each once."""
    return list(dict.fromkeys(member.decode().rpartition(":")[0] for member, descriptor, _ in taken if descriptor))


def with_audio(redis, taken, also=()):
    """The windows taken (take_windows or queue_take's reply) with their audio, and the values of
    the keys `also` (a worker's other reads of the batch), in one round trip: ([(descriptor,
    audio)], [value of each of `also`]); (None, None) for a window dropped meanwhile or whose
    account (gone_prefix + user id exists) is deleted."""
    prefix = audio_key("", "")[:-1]
    live = [prefix + member.decode() for member, descriptor, _ in taken if descriptor]
    values = redis.mget(live + list(also)) if live or also else []
    audio = iter(values[:len(live)])
    windows = []
    for _, descriptor, _ in taken:
        pcm = next(audio) if descriptor else None
        windows.append((descriptor, pcm) if pcm is not None else (None, None))
    return windows, values[len(live):]


# A drain job counts as waiting from just before its blocking pop until a little after the pop
# must have returned: a worker that died while waiting stops counting soon.
# Sent whole with EVAL: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
_WAIT = "redis.call('ZADD', KEYS[1], redis.call('TIME')[1] + tonumber(ARGV[2]), ARGV[1])"


def wait_for_window(redis, job_id, timeout_s):
    """Block up to timeout_s for the bell that a new window rings, counted meanwhile as a
    waiting drain job, for which add_pending queues no new one. Then take_windows must be
    asked: the bell says only that some window was added. Returns whether it rang."""
    pipe = redis.pipeline(transaction=False)
    pipe.eval(_WAIT, 1, WAITING_KEY, job_id, int(timeout_s) + 2)
    pipe.blpop([BELL_KEY], timeout_s)
    # Redis runs a connection's commands in order, so this one runs as the pop returns, in the
    # same round trip. A window added after the pop returned but before this job stopped
    # counting as waiting queued no job: the caller takes it after this.
    pipe.zrem(WAITING_KEY, job_id)
    return pipe.execute()[1] is not None


def ready_count(redis):
    return redis.zcard(READY_KEY)


def done(pipe, session_id, index):
    """Queue on a pipeline the end of a window's wait: it is stored."""
    pipe.zrem(pending_key(session_id), index)
    pipe.delete(window_key(session_id, index), audio_key(session_id, index))


# Ends what a job took (KEYS[1]) and its holds on those users (ARGV[3..]), where still its own.
_RELEASE = """
redis.call('DEL', KEYS[1])
for i = 3, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  if redis.call('GET', key) == ARGV[2] then redis.call('DEL', key) end
end
"""


def taken_done(pipe, job_id, users):
    """Queue on a pipeline the end of what job_id took (every window of it stored or skipped)
    and of its holds on their users (users_of what it took): their next windows are free for
    any job."""
    pipe.eval(_RELEASE, 1, taken_key(job_id), HOLD_PREFIX, job_id, *users)


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
