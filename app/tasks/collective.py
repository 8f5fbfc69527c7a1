"""The periodic collective-mood job (registered in app/tasks/cron.py)."""
from app.collective import take_snapshot


def aggregate_collective():
    snapshot = take_snapshot()
    return {"id": str(snapshot.id), "active_users": snapshot.active_users, "readings": snapshot.reading_count}
