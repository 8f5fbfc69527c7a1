"""rq cron configuration (the Procfile's cron process loads this file)."""
import os

from rq import cron

from app.tasks.collective import aggregate_collective

cron.register(aggregate_collective, queue_name="collective",
              interval=int(os.environ.get("COLLECTIVE_INTERVAL_SECONDS", 10)), job_timeout=60, result_ttl=60)
