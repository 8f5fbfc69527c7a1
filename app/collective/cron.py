"""rq cron configuration (the Procfile's cron process loads this file): a collective snapshot
every COLLECTIVE_INTERVAL_SECONDS on the `collective` queue, and the check for streamed windows
that no drain job will take (app/live/drain.py restart_drain) on the `analysis` queue."""
from rq import cron

from app.collective.snapshot import aggregate_collective
from app.live.drain import RESTART_CHECK_SECONDS, restart_drain
from config import Config

cron.register(aggregate_collective, queue_name="collective", interval=Config.COLLECTIVE_INTERVAL_SECONDS,
              job_timeout=60, result_ttl=60)
cron.register(restart_drain, queue_name="analysis", interval=RESTART_CHECK_SECONDS, job_timeout=30, result_ttl=0)
