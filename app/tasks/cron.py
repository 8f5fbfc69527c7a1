"""rq cron configuration (the Procfile's cron process loads this file)."""
