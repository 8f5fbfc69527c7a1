import json
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from test_readings import post, probs

from helpers import assert_error


def users(api, n):
    return [api.register(email=f"user{i}@example.com")["access_token"] for i in range(n)]


def test_snapshot_hides_breakdown_below_min_users(app, api):
    from app.collective.snapshot import take_snapshot

    (ada,) = users(api, 1)
    post(api, ada, probabilities=probs(happy=0.9))
    with app.app_context():
        snapshot = take_snapshot()
    assert snapshot.active_users == 1 and snapshot.reading_count == 1
    assert snapshot.hidden and snapshot.distribution is None and snapshot.mean_valence is None
    current = api.call("GET", "/api/collective/current").get_json()  # anonymous
    assert current["hidden"] is True and current["distribution"] is None


def test_snapshot_of_three_users_trend_and_broadcast(app, api):
    from app.collective.snapshot import take_snapshot

    tokens = users(api, 3)
    for token in tokens:
        post(api, token, probabilities=probs(sad=0.9))
    pubsub = app.extensions["redis"].pubsub()
    pubsub.subscribe("flask-socketio")
    pubsub.get_message(timeout=1)
    with app.app_context():
        first = take_snapshot()
        for token in tokens:
            post(api, token, probabilities=probs(happy=1.0))
        second = take_snapshot(first.created_at + timedelta(seconds=10))
    assert first.active_users == 3 and not first.hidden
    assert first.dominant == "sad" and first.distribution["sad"] == 1.0
    assert second.reading_count == 6
    assert second.distribution["happy"] == 0.5
    assert second.trend["direction"] == "rising"
    assert second.trend["valence_delta"] == pytest.approx(second.mean_valence - first.mean_valence)
    # Broadcast through the Socket.IO message queue to the collective room.
    messages = []
    for _ in range(10):
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            messages.append(message["data"])
        if len(messages) == 2:
            break
    pubsub.close()
    assert len(messages) == 2
    assert all(b'"collective"' in m for m in messages)
    body = api.call("GET", "/api/collective/current").get_json()
    assert body["id"] == str(second.id)


def test_cron_job_runs_on_the_collective_queue(app, api):
    from rq.cron import CronScheduler

    from app.collective.snapshot import aggregate_collective
    from app.live.drain import RESTART_CHECK_SECONDS, restart_drain
    from app.models import CollectiveEmotion

    scheduler = CronScheduler(connection=app.extensions["redis"])
    scheduler.load_config_from_file("app/collective/cron.py")
    jobs = scheduler.get_jobs()
    assert [(j.func, j.queue_name, j.interval) for j in jobs] == [(aggregate_collective, "collective", 10),
                                                                  (restart_drain, "analysis", RESTART_CHECK_SECONDS)]

    queue = Queue("collective", connection=app.extensions["redis"])
    job = queue.enqueue(aggregate_collective)
    with app.app_context():
        SimpleWorker([queue], connection=app.extensions["redis"]).work(burst=True)
    assert job.get_status(refresh=True) == "finished", job.latest_result()
    assert CollectiveEmotion.objects.count() == 1


def test_history_insights_and_list_are_public(app, api):
    from app.collective.snapshot import take_snapshot

    tokens = users(api, 3)
    with app.app_context():
        for i, p in enumerate((probs(sad=0.9), probs(happy=0.95), probs(sad=0.95))):
            for token in tokens:
                post(api, token, probabilities=p)
            take_snapshot()
    history = api.call("GET", "/api/collective/history?hours=1").get_json()["snapshots"]
    assert len(history) == 3
    assert history[0]["created_at"] <= history[1]["created_at"] <= history[2]["created_at"]
    insights = api.call("GET", "/api/collective/insights?hours=1").get_json()
    assert insights["snapshot_count"] == 3
    assert insights["peaks"]["highest_valence"]["timestamp"] == history[1]["window_end"]
    listed = api.call("GET", "/api/collective?limit=2").get_json()
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    assert_error(api.call("GET", "/api/collective/history?hours=0"), 422)
    assert_error(api.call("GET", "/api/collective/history?days=1"), 422)
    # Anonymous users may read collective data and nothing else.
    assert_error(api.call("GET", "/api/readings"), 401)
    assert_error(api.call("GET", "/api/environment"), 401)


def test_environment_responses_follow_readings_without_flicker(api):
    ada = api.register()["access_token"]
    session = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    post(api, ada, probabilities=probs(happy=0.9), session_id=session)
    # A wobble that keeps happy ahead produces no new response.
    for p in (probs(happy=0.8), probs(happy=0.85), probs(happy=0.9)):
        post(api, ada, probabilities=p, session_id=session)
    responses = api.call("GET", f"/api/environment/for_session?session_id={session}", token=ada).get_json()["items"]
    assert len(responses) == 1
    latest = api.call("GET", f"/api/environment/latest_for_session?session_id={session}", token=ada).get_json()
    assert latest["id"] == responses[0]["id"]
    assert latest["state"]["dominant"] == "happy"
    assert latest["lighting"]["hex"].startswith("#") and len(latest["lighting"]["cie_xy"]) == 2
    assert {"base_frequency_hz", "tempo_bpm"} <= set(latest["audio"])
    assert {"type", "particle_count"} <= set(latest["visual"])
    assert {"temperature_c", "humidity_pct"} <= set(latest["smart_home"])
    # A sustained change of emotion does produce a new response.
    for _ in range(6):
        post(api, ada, probabilities=probs(angry=0.95), session_id=session)
    latest = api.call("GET", f"/api/environment/latest_for_session?session_id={session}", token=ada).get_json()
    assert latest["state"]["dominant"] == "angry"
    everything = api.call("GET", "/api/environment", token=ada).get_json()["items"]
    assert len(everything) >= 2


def test_environment_is_private_and_404_without_responses(api):
    ada = api.register()["access_token"]
    bob = api.register(email="bob@example.com")["access_token"]
    session = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    assert_error(api.call("GET", f"/api/environment/latest_for_session?session_id={session}", token=ada), 404)
    post(api, ada, probabilities=probs(happy=0.9), session_id=session)
    assert_error(api.call("GET", f"/api/environment/for_session?session_id={session}", token=bob), 404)
    assert api.call("GET", "/api/environment", token=bob).get_json()["items"] == []
    assert_error(api.call("GET", "/api/environment/for_session", token=ada), 422)


def test_system_stats_for_admins_only(app, api):
    ada = api.register()["access_token"]
    post(api, ada, probabilities=probs(happy=0.9))
    assert_error(api.call("GET", "/api/system/stats", token=ada), 403)
    assert_error(api.call("GET", "/api/system/stats"), 401)
    app.test_cli_runner().invoke(args=["users", "create-admin", "--email", "root@example.com",
                                       "--password", "admin password 1"])
    root = api.call("POST", "/api/auth/login", json={"email": "root@example.com", "password": "admin password 1"})
    stats = api.call("GET", "/api/system/stats", token=root.get_json()["access_token"]).get_json()
    assert stats["counts"]["users"] == 2 and stats["counts"]["readings"] == 1
    assert stats["readings_per_minute"] == pytest.approx(0.1)
    assert set(stats["queues"]) == {"analysis", "collective"}
    assert stats["uptime_seconds"] > 0
    assert json.dumps(stats)


def test_aggregate_collective_command(app, api):
    from app.models import CollectiveEmotion

    for token in users(api, 3):
        post(api, token, probabilities=probs(calm=0.9))
    result = app.test_cli_runner().invoke(args=["aggregate-collective"])
    assert result.exit_code == 0, result.output
    snapshot = CollectiveEmotion.objects.get()
    assert f"snapshot {snapshot.id}: 3 users, 3 readings, dominant calm" in result.output


def test_snapshot_counts_the_window_to_the_second_and_forgets_deleted_readings(app, api):
    """The snapshot reads running totals kept as readings are stored (app.readings.rollups.tally):
    checked against the readings in MongoDB, through deletions of a session and an account."""
    from datetime import UTC, datetime

    from app.collective.snapshot import take_snapshot
    from app.models import EmotionReading

    ada, bob, cy = users(api, 3)
    for token in (ada, bob, cy):
        post(api, token, probabilities=probs(sad=0.9))
    session = api.call("POST", "/api/sessions", token=cy, json={}).get_json()["id"]
    for _ in range(2):
        post(api, cy, probabilities=probs(happy=0.9), session_id=session)
    # Older than the 5-minute window: stored, never counted.
    old = (datetime.now(UTC) - timedelta(minutes=6)).isoformat()
    assert post(api, bob, probabilities=probs(angry=0.9), timestamp=old).status_code == 201

    def snapshot_matches_database(users_expected, readings_expected):
        with app.app_context():
            snapshot = take_snapshot()
        in_window = EmotionReading.objects(silence=False, timestamp__gte=snapshot.window_start,
                                           timestamp__lt=snapshot.window_end)
        assert snapshot.reading_count == in_window.count() == readings_expected
        assert snapshot.active_users == len({r.owner.id for r in in_window}) == users_expected
        return snapshot

    first = snapshot_matches_database(3, 5)
    assert first.active_sessions == 1
    assert {name: share for name, share in first.distribution.items() if share} == {"sad": 0.6, "happy": 0.4}

    assert api.call("DELETE", f"/api/sessions/{session}", token=cy).status_code == 204
    second = snapshot_matches_database(3, 3)
    assert second.active_sessions == 0
    assert {name: share for name, share in second.distribution.items() if share} == {"sad": 1.0}

    assert api.call("DELETE", "/api/auth/profile", token=ada).status_code == 204
    third = snapshot_matches_database(2, 2)
    assert third.hidden  # below COLLECTIVE_MIN_USERS now
