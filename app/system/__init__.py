"""Health and monitoring (/api/system), the interactive API docs page, and data retention
(`flask prune`)."""
