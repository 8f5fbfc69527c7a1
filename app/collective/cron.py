"""rq cron configuration (the Procfile's cron process loads this file): a collective snapshot
every COLLECTIVE_INTERVAL_SECONDS, on the `collective` queue."""
from rq import cron

from app.collective.snapshot import aggregate_collective
from config import Config

cron.register(aggregate_collective, queue_name="collective", interval=Config.COLLECTIVE_INTERVAL_SECONDS,
              job_timeout=60, result_ttl=60)
