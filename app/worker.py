"""The RQ worker class the Procfile runs.

SimpleWorker runs jobs in its own process instead of forking one child per job: TensorFlow is
not fork-safe once initialised, and loading the model per job would cost far more than the
inference (ARCHITECTURE.md, decision 2). The Flask app is built once here, so jobs share its
MongoDB connection and configuration, and the model is loaded before the first job arrives.

A worker that dies mid-job (SIGKILL, out of memory, machine lost) leaves its job in RQ's
StartedJobRegistry. RQ retries such an abandoned job (Retry policy permitting) once the
registry entry's heartbeat has expired and a live worker cleans the registry. A plain
SimpleWorker sets that expiry to the job's whole timeout plus 60 s and cleans every 10 minutes,
so an abandoned upload would wait up to 20 minutes. This worker keeps a heartbeat thread
beating every `--job-monitoring-interval` seconds while a job runs, lets the entry expire three
beats after the last one, and cleans the registries every `--maintenance-interval` seconds
(also when idle: it waits for jobs no longer than that). Both are rq's own options; the
Procfile sets them.

Liveness is the heartbeat: the worker beats every `--job-monitoring-interval` seconds, busy or
idle, and its registration expires three beats after the last, so /api/system/health counts only
workers that beat lately (app/system/health.py). At every beat a worker also requeues the jobs
of the queues' dead workers (the started-job entries whose heartbeat expired), under the lock
RQ's maintenance takes, so a dead worker's job goes back to the queue (at once, not after its
retry interval) within a beat of being known dead instead of at the next maintenance. The
scheduler child that `--with-scheduler` forks is told to stop when the worker dies, however it
dies (Linux: PR_SET_PDEATHSIG).

A Redis outage does not end the worker (RQ's loop quits on any Redis error but one): each step
of the loop waits for Redis with backoff and goes on, the model stays loaded, and a job that
Redis's absence interrupted is retried under its Retry policy once its heartbeat has expired.
"""
import ctypes
import importlib
import logging
import os
import signal
import sys
import threading
import time

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.timeouts import TimerDeathPenalty

from app import create_app, realtime
from app.analysis.model import recognizer
from app.runtime import freeze_startup_objects

log = logging.getLogger(__name__)

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
REDIS_BACKOFF_S = (0.5, 30.0)  # first wait, longest wait; doubled at each failed attempt
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _hold_stop_signals():
    """Before a fork: a stop signal sent to the child before it has reset the worker's handlers
    would run a worker handler in the scheduler and be lost, and the worker would wait on a
    scheduler that never stops. Blocked across the fork, it waits in the child for the reset."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _release_stop_signals():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _die_with_parent():
    """In a forked child (the scheduler): be sent SIGTERM when the worker dies, and die of a stop
    signal (one that came during the fork included) until the scheduler installs its own
    handlers (the worker's are not for the child)."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _release_stop_signals()


class AbandonedJob(Job):
    """A job whose worker died, as the heartbeat's cleanup fetches it: its retry goes straight
    back to the queue. Retry intervals are for failures that may pass with time; a dead worker
    is known, and waiting for the scheduler (which may have died with it, its lock lingering
    a minute) would only hold the upload up."""

    def get_retry_interval(self):
        return 0


def _rides_out_redis(method):
    """Run a step of RQ's work loop again, once Redis answers, when Redis is away."""
    def step(self, *args, **kwargs):
        while True:
            try:
                return method(self, *args, **kwargs)
            except REDIS_DOWN as error:
                self.wait_for_redis(error)
    return step


class AnalysisWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._running = None   # the job being executed, for the heartbeat thread
        # Reentrant: RQ stops the scheduler from a signal handler, which may interrupt the main
        # thread's maintenance while it holds the lock.
        self._scheduler_lock = threading.RLock()
        self._signing_off = False
        self.app = create_app(serve_socketio=False)
        self.app.app_context().push()
        # RQ prints its own lines through its own handler; passed on to the root handler that
        # create_app configures, every line was printed twice.
        logging.getLogger("rq").propagate = False
        try:
            recognizer()
        except Exception:  # the collective jobs still run; analysis jobs will fail with the reason
            log.exception("the emotion model could not be loaded")
        # Paid here rather than by the first window (which measured 150 ms late): RQ imports a
        # job's module on first use, and the Socket.IO emitter is built on the first event.
        importlib.import_module("app.live.drain")
        importlib.import_module("app.analysis.jobs")
        realtime.emitter()
        freeze_startup_objects()
        os.register_at_fork(before=_hold_stop_signals, after_in_parent=_release_stop_signals,
                            after_in_child=_die_with_parent)
        # One heartbeat thread for the worker's life, not one per job.
        threading.Thread(target=self._beat, name="rq-heartbeat", daemon=True).start()

    def bootstrap(self, *args, **kwargs):
        # RQ registers the worker here and starts the scheduler before it installs its stop
        # handlers: a SIGTERM in that gap (Ctrl-C of `make run` as it came up) ended the worker
        # still registered, and health counted it for three beats beside its successor. A stop
        # signal in the gap only asks the work loop to stop at its first pass, where RQ's
        # handlers are in place and its teardown signs the worker off.
        signal.signal(signal.SIGTERM, self._stop_once_started)
        signal.signal(signal.SIGINT, self._stop_once_started)
        super().bootstrap(*args, **kwargs)

    def _stop_once_started(self, _signum, _frame):
        self._stop_requested = True

    def stop_scheduler(self):
        # From here on the heartbeat thread leaves the worker alone: a scheduler it restarted now
        # would never be told to stop, and the worker's exit would wait on it for ever.
        with self._scheduler_lock:
            self._signing_off = True
            super().stop_scheduler()

    def teardown(self):
        self._signing_off = True
        super().teardown()

    def wait_for_redis(self, error):
        """Block until Redis answers a ping, retrying with exponential backoff."""
        delay, longest = REDIS_BACKOFF_S
        log.warning("worker %s: Redis is unreachable (%s); waiting for it, the model stays loaded", self.name, error)
        while True:
            time.sleep(delay)
            try:
                self.connection.ping()
                log.warning("worker %s: Redis is back", self.name)
                return
            except REDIS_DOWN:
                delay = min(2 * delay, longest)

    check_for_suspension = _rides_out_redis(SimpleWorker.check_for_suspension)

    @_rides_out_redis
    def run_maintenance_tasks(self):
        with self._scheduler_lock:  # the heartbeat thread may restart the scheduler too
            super().run_maintenance_tasks()

    dequeue_job_and_maintain_ttl = _rides_out_redis(SimpleWorker.dequeue_job_and_maintain_ttl)
    heartbeat = _rides_out_redis(SimpleWorker.heartbeat)

    @property
    def dequeue_timeout(self):
        """An idle worker waits at most this long for a job before it looks at its maintenance
        (RQ's default is worker_ttl - 15 = 405 s, which would hold off the cleaning above)."""
        return max(1, self.maintenance_interval)

    def get_heartbeat_ttl(self, job):
        """How long the job's entry in the StartedJobRegistry lives without a new heartbeat."""
        return int(3 * self.job_monitoring_interval) + 1

    def execute_job(self, job, queue):
        self._running = job
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as error:
            # The job's outcome could not be recorded. Its started-job entry stays; once its
            # heartbeat expires, it is retried like the job of a dead worker.
            log.warning("job %s interrupted: Redis went away", job.id)
            self.wait_for_redis(error)
        finally:
            self._running = None

    def _beat(self):
        ttl = int(3 * self.job_monitoring_interval) + 1
        while True:
            time.sleep(self.job_monitoring_interval)
            try:
                self._beat_once(ttl)
            except Exception as error:  # Redis away for a moment: the next beat tries again
                log.warning("worker %s: heartbeat failed: %s", self.name, error)

    def _beat_once(self, ttl):
        if self._signing_off:
            return
        job, execution = self._running, getattr(self, "execution", None)
        if self.birth_date is not None and not self._stop_requested and not self.connection.exists(self.key):
            self.register_birth()  # the registration expired during a Redis outage, or Redis lost it
        with self.connection.pipeline() as pipeline:
            if job is not None and execution is not None:
                execution.heartbeat(job.started_job_registry, ttl, pipeline=pipeline)
            SimpleWorker.heartbeat(self, ttl, pipeline=pipeline)  # the worker: gone soon after it dies
            pipeline.execute()
        with self._scheduler_lock:
            if not self._signing_off and self.scheduler is not None and (self.scheduler._process is None
                                               or not self.scheduler._process.is_alive()):
                # The scheduler (which runs retries) may have died with another worker: a live
                # worker takes it over now rather than at its next maintenance.
                self.scheduler.acquire_locks(auto_start=True)
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                try:
                    # A timer, not SIGALRM, bounds the failure callbacks: this is not the main thread.
                    StartedJobRegistry(queue=queue, job_class=AbandonedJob, death_penalty_class=TimerDeathPenalty
                                       ).cleanup(exception_handlers=self._exc_handlers)
                finally:
                    queue.release_maintenance_lock()
