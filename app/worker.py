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
"""
import importlib
import logging
import threading
import time

from rq import SimpleWorker

from app import create_app, realtime
from app.analysis.model import recognizer
from app.runtime import freeze_startup_objects

log = logging.getLogger(__name__)


class AnalysisWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._running = None   # the job being executed, for the heartbeat thread
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
        # One heartbeat thread for the worker's life, not one per job.
        threading.Thread(target=self._beat, name="rq-heartbeat", daemon=True).start()

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
        finally:
            self._running = None

    def _beat(self):
        while True:
            time.sleep(self.job_monitoring_interval)
            job, execution = self._running, getattr(self, "execution", None)
            if job is None or execution is None:
                continue
            try:
                with self.connection.pipeline() as pipeline:
                    ttl = self.get_heartbeat_ttl(job)
                    execution.heartbeat(job.started_job_registry, ttl, pipeline=pipeline)
                    pipeline.expire(self.key, ttl)  # the worker itself: gone soon after it dies
                    pipeline.execute()
            except Exception as error:  # Redis away for a moment: the next beat tries again
                log.warning("heartbeat of job %s failed: %s", job.id, error)
