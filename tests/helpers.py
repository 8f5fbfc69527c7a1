"""Assertions, waits and workers shared by the tests."""
import time

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
