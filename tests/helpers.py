"""Assertions, waits, workers and crafted readings shared by the tests."""
import time
from datetime import datetime, timedelta, timezone

from rq import Queue, SimpleWorker


def assert_error(response, status, code=None):
    """Every error uses one shape; returns its body for further checks."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def wait_for(predicate, timeout=10):
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def run_worker(app):
    """Run the queued analysis jobs in a real RQ worker (non-forking, as in production), then return."""
    with app.app_context():
        SimpleWorker([Queue("analysis", connection=app.extensions["redis"])],
                     connection=app.extensions["redis"]).work(burst=True)


# Crafted readings for the analytics formulas, timed in seconds from T0.
T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(seconds, dominant, valence, arousal, intensity=0.5, probabilities=None, user=None, session=None):
    probs = probabilities or ({"neutral": 1.0} if dominant == "neutral" else {dominant: 0.6, "neutral": 0.4})
    r = {"timestamp": at(seconds), "probabilities": probs, "dominant": dominant,
         "confidence": max(probs.values()), "valence": valence, "arousal": arousal, "intensity": intensity}
    if user is not None:
        r["user_id"] = user
    if session is not None:
        r["session_id"] = session
    return r
