import json
from datetime import datetime, timedelta

import pytest
from test_readings import CLASSES, post, probs

from app.readings import series

from helpers import assert_error


def one_hot(name):
    return {**dict.fromkeys(CLASSES, 0.0), name: 1.0}


def new_session(api, token, **body):
    response = api.call("POST", "/api/sessions", token=token, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_list_get_end_and_active(api, ada):
    first = new_session(api, ada, name="morning")
    second = new_session(api, ada)
    assert first["status"] == "active" and first["name"] == "morning" and first["ended_at"] is None
    listed = api.call("GET", "/api/sessions", token=ada).get_json()
    assert [s["id"] for s in listed["items"]] == [second["id"], first["id"]]
    ended = api.call("POST", f"/api/sessions/{first['id']}/end", token=ada).get_json()
    assert ended["status"] == "ended" and ended["ended_at"]
    again = api.call("POST", f"/api/sessions/{first['id']}/end", token=ada).get_json()
    assert again["ended_at"] == ended["ended_at"]
    active = api.call("GET", "/api/sessions/active", token=ada).get_json()
    assert [s["id"] for s in active["items"]] == [second["id"]]
    only_ended = api.call("GET", "/api/sessions?status=ended", token=ada).get_json()
    assert [s["id"] for s in only_ended["items"]] == [first["id"]]
    assert api.call("GET", f"/api/sessions/{second['id']}", token=ada).get_json()["id"] == second["id"]
    assert_error(api.call("POST", "/api/sessions", token=ada, json={"name": "x" * 121}), 422)
    assert_error(api.call("POST", "/api/sessions", token=ada, json={"status": "ended"}), 422)


def test_sessions_are_private(api, ada):
    bob = api.register(email="bob@example.com")["access_token"]
    session = new_session(api, ada)
    for method, suffix in (("GET", ""), ("GET", "/analytics"), ("GET", "/insights"), ("POST", "/end"), ("DELETE", "")):
        assert_error(api.call(method, f"/api/sessions/{session['id']}{suffix}", token=bob), 404)
    assert api.call("GET", "/api/sessions/active", token=bob).get_json()["items"] == []
    assert_error(api.call("GET", "/api/sessions/123", token=ada), 422)


def test_delete_session_removes_its_readings_and_responses(api, ada):
    from app.models import AnalysisJob, EmotionReading, EnvironmentResponse

    keep = new_session(api, ada)
    gone = new_session(api, ada)
    for session in (keep, gone):
        post(api, ada, probabilities=probs(happy=0.9), session_id=session["id"])
    assert EnvironmentResponse.objects.count() == 2
    AnalysisJob(owner=EmotionReading.objects.first().owner, session=gone["id"]).save()
    assert api.call("DELETE", f"/api/sessions/{gone['id']}", token=ada).status_code == 204
    assert AnalysisJob.objects.count() == 0
    assert_error(api.call("GET", f"/api/sessions/{gone['id']}", token=ada), 404)
    assert EmotionReading.objects.count() == 1 and EnvironmentResponse.objects.count() == 1
    assert str(EmotionReading.objects.first().session.id) == keep["id"]


def test_analytics_and_insights_on_known_readings(api, ada):
    session = new_session(api, ada)
    start = datetime.fromisoformat(session["started_at"])
    # happy, happy, sad at +10 s, +20 s, +40 s (one-hot, so valence/arousal are the class coordinates).
    for seconds, name in ((10, "happy"), (20, "happy"), (40, "sad")):
        post(api, ada, probabilities=one_hot(name), session_id=session["id"],
             timestamp=(start + timedelta(seconds=seconds)).isoformat())
    analytics = api.call("GET", f"/api/sessions/{session['id']}/analytics", token=ada).get_json()
    assert analytics["reading_count"] == 3
    assert analytics["distribution"] == {**dict.fromkeys(CLASSES, 0.0), "happy": pytest.approx(2 / 3),
                                         "sad": pytest.approx(1 / 3)}
    assert analytics["dominant_emotion"] == "happy"
    happy_v, sad_v = 0.9848, -0.8660
    assert analytics["valence"]["mean"] == pytest.approx((2 * happy_v + sad_v) / 3, abs=1e-3)
    assert analytics["valence"]["peak"]["value"] == pytest.approx(happy_v, abs=1e-4)
    assert analytics["valence"]["low"]["value"] == pytest.approx(sad_v, abs=1e-4)
    assert analytics["arousal"]["low"]["timestamp"].startswith((start + timedelta(seconds=40)).isoformat()[:19])
    # Still open: it lasts until its latest reading.
    assert analytics["duration_seconds"] == pytest.approx(40, abs=0.01)
    assert len(analytics["timeline"]) == 3

    insights = api.call("GET", f"/api/sessions/{session['id']}/insights", token=ada).get_json()
    assert insights["transitions"] == [{"from": "happy", "to": "sad", "count": 1}]
    assert insights["transition_count"] == 1
    # Volatility: mean step in the valence-arousal plane = (0 + |happy - sad|) / 2.
    step = ((happy_v - sad_v) ** 2 + (0.1736 + 0.5) ** 2) ** 0.5
    assert insights["volatility"] == pytest.approx(step / 2, abs=1e-3)
    assert insights["progression"]["valence_direction"] == "declining"
    assert insights["summary"]


def test_empty_session_analytics_are_defined(api, ada):
    session = new_session(api, ada)
    analytics = api.call("GET", f"/api/sessions/{session['id']}/analytics", token=ada).get_json()
    assert analytics["reading_count"] == 0 and analytics["dominant_emotion"] is None
    insights = api.call("GET", f"/api/sessions/{session['id']}/insights", token=ada).get_json()
    assert insights["volatility"] is None and insights["transitions"] == []


def test_a_summary_cached_by_an_earlier_release_is_recomputed(app, api, ada):
    session = new_session(api, ada)
    post(api, ada, probabilities=one_hot("happy"), session_id=session["id"])
    url = f"/api/sessions/{session['id']}/analytics"
    first = api.call("GET", url, token=ada)
    redis = app.extensions["redis"]
    key = series.cache_key(session["id"])
    cached = json.loads(redis.get(key))
    # Two earlier formats: the summary itself; the bodies checked against the session's start and
    # end (read from the session at every request).
    for earlier in ({"summary": {"analytics": {}}}, {"stamp": "-", "bodies": {"analytics": "{}", "insights": "{}"}}):
        redis.set(key, json.dumps({"token": cached["token"], **earlier}))
        again = api.call("GET", url, token=ada)
        assert again.status_code == 200 and again.get_json() == first.get_json()
        assert json.loads(redis.get(key))["owner"] == str(ada_id(api, ada))


def ada_id(api, token):
    return api.call("GET", "/api/auth/profile", token=token).get_json()["id"]


def test_cached_analytics_follow_the_end_and_the_owner(app, api, ada):
    """Served from the cache without loading the session, yet: ending the session shows at once,
    another user still gets 404, an admin still reads it, and a deleted session is gone."""
    session = new_session(api, ada)
    start = datetime.fromisoformat(session["started_at"])
    post(api, ada, probabilities=one_hot("happy"), session_id=session["id"],
         timestamp=(start + timedelta(seconds=5)).isoformat())
    url = f"/api/sessions/{session['id']}/analytics"
    for _ in range(2):      # computed, then cached
        assert api.call("GET", url, token=ada).get_json()["duration_seconds"] == pytest.approx(5, abs=0.01)
    ended = api.call("POST", f"/api/sessions/{session['id']}/end", token=ada).get_json()
    lasted = (datetime.fromisoformat(ended["ended_at"]) - start).total_seconds()
    assert api.call("GET", url, token=ada).get_json()["duration_seconds"] == pytest.approx(lasted, abs=0.01)
    assert json.loads(app.extensions["redis"].get(series.cache_key(session["id"])))["owner"] == ada_id(api, ada)
    bob = api.register(email="bob@example.com")["access_token"]
    assert_error(api.call("GET", url, token=bob), 404)
    assert_error(api.call("GET", f"/api/sessions/{session['id']}/insights", token=bob), 404)
    with app.app_context():
        from app.models import User
        User.objects(email="bob@example.com").update(set__role="admin")
    assert api.call("GET", url, token=bob).get_json()["duration_seconds"] == pytest.approx(lasted, abs=0.01)
    assert api.call("DELETE", f"/api/sessions/{session['id']}", token=ada).status_code == 204
    assert_error(api.call("GET", url, token=ada), 404)


def test_analytics_computed_while_the_session_ends_are_not_cached(app, api, ada):
    from app.models import EmotionSession
    from app.sessions.store import end_session
    from app.sessions.summary import session_bodies

    session = new_session(api, ada)
    start = datetime.fromisoformat(session["started_at"])
    post(api, ada, probabilities=one_hot("happy"), session_id=session["id"],
         timestamp=(start + timedelta(seconds=5)).isoformat())

    def load_then_end():    # the session is read, then it ends before its series is
        doc = EmotionSession.objects.get(id=session["id"])
        end_session(doc.id)
        return doc

    with app.app_context():
        stale = json.loads(session_bodies(session["id"], ada_id(api, ada), load_then_end)["analytics"])
    assert stale["duration_seconds"] == pytest.approx(5, abs=0.01)
    fresh = api.call("GET", f"/api/sessions/{session['id']}/analytics", token=ada).get_json()
    assert fresh["duration_seconds"] < 1
