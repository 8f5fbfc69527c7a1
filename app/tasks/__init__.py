"""RQ jobs and cron. Runs in worker processes only (the web process never imports TensorFlow)."""
