from datetime import UTC, datetime, timedelta

import pytest

from helpers import assert_error

CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def probs(**shares):
    """Probabilities with the given shares, the rest spread evenly over the other classes."""
    rest = (1 - sum(shares.values())) / (len(CLASSES) - len(shares))
    return {name: shares.get(name, rest) for name in CLASSES}


def post(api, token, **body):
    return api.call("POST", "/api/readings", token=token, json=body)


def test_post_reading_derives_dominant_valence_arousal_intensity(api, ada):
    response = post(api, ada, probabilities={**dict.fromkeys(CLASSES, 0.0), "happy": 1.0}, detector="face-v1")
    assert response.status_code == 201, response.get_json()
    reading = response.get_json()
    assert reading["dominant"] == "happy" and reading["confidence"] == 1.0
    assert reading["source"] == "manual" and reading["model_version"] == "face-v1"
    # happy sits at 10 degrees on the circumplex (ml/affect.py): cos 10 = 0.9848, sin 10 = 0.1736.
    assert reading["valence"] == pytest.approx(0.9848, abs=1e-4)
    assert reading["arousal"] == pytest.approx(0.1736, abs=1e-4)
    assert reading["intensity"] == pytest.approx(1.0, abs=1e-4)
    fetched = api.call("GET", f"/api/readings/{reading['id']}", token=ada).get_json()
    assert fetched["probabilities"]["happy"] == 1.0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"probabilities": probs(happy=0.5) | {"happy": 0.9}}, "probabilities"),
        ({"probabilities": {**probs(), "joy": 0.0}}, "probabilities"),
        ({"probabilities": {k: v for k, v in probs().items() if k != "sad"}}, "probabilities"),
        ({"probabilities": probs() | {"sad": -0.1, "calm": 0.35}}, "probabilities"),
        ({"probabilities": probs() | {"sad": "high"}}, "probabilities"),
        ({"probabilities": probs(), "source": "telepathy"}, "source"),
        ({"probabilities": probs(), "session_id": "nope"}, "session_id"),
        ({"probabilities": probs(), "timestamp": "yesterday"}, "timestamp"),
        ({"probabilities": probs(), "timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"probabilities": probs(), "owner": "someone"}, "owner"),
        ({}, "probabilities"),
    ],
)
def test_post_reading_rejects_bad_input(api, ada, body, field):
    error = assert_error(post(api, ada, **body), 422)
    assert field in error["message"]


def test_reading_in_the_future_and_in_an_ended_or_foreign_session(api, ada, bob):
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert "timestamp" in assert_error(post(api, ada, probabilities=probs(), timestamp=future), 422)["message"]
    bobs = api.call("POST", "/api/sessions", token=bob, json={}).get_json()["id"]
    assert_error(post(api, ada, probabilities=probs(), session_id=bobs), 404)
    mine = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    api.call("POST", f"/api/sessions/{mine}/end", token=ada)
    assert_error(post(api, ada, probabilities=probs(), session_id=mine), 409, "session_ended")


def test_readings_are_private(api, ada, bob):
    reading = post(api, ada, probabilities=probs(sad=0.8)).get_json()
    assert_error(api.call("GET", f"/api/readings/{reading['id']}", token=bob), 404)
    assert api.call("GET", "/api/readings", token=bob).get_json()["items"] == []
    assert_error(api.call("GET", f"/api/readings?user_id={reading['user_id']}", token=bob), 403)
    assert_error(api.call("GET", "/api/readings/not-an-id", token=ada), 422)
    assert_error(api.call("GET", "/api/readings"), 401)


def test_admin_reads_any_users_readings(app, api, ada):
    reading = post(api, ada, probabilities=probs(sad=0.8)).get_json()
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create-admin", "--email", "root@example.com", "--password", "admin password 1"])
    credentials = {"email": "root@example.com", "password": "admin password 1"}
    admin = api.call("POST", "/api/auth/login", json=credentials).get_json()
    token = admin["access_token"]
    assert api.call("GET", f"/api/readings/{reading['id']}", token=token).status_code == 200
    listed = api.call("GET", f"/api/readings?user_id={reading['user_id']}", token=token).get_json()
    assert [r["id"] for r in listed["items"]] == [reading["id"]]


def test_list_filters_and_cursor_pagination(api, ada):
    base = datetime.now(UTC) - timedelta(minutes=30)
    session = api.call("POST", "/api/sessions", token=ada, json={"name": "talk"}).get_json()["id"]
    ids = []
    for i in range(7):
        body = {"probabilities": probs(happy=0.6) if i % 2 else probs(angry=0.6),
                "timestamp": (base + timedelta(minutes=i)).isoformat()}
        if i < 3:
            body["session_id"] = session
        ids.append(post(api, ada, **body).get_json()["id"])

    seen, url = [], "/api/readings?limit=3"
    while url:
        page = api.call("GET", url, token=ada).get_json()
        assert len(page["items"]) <= 3
        seen += [r["id"] for r in page["items"]]
        url = page["next"]
    assert seen == ids[::-1]

    angry = api.call("GET", "/api/readings?dominant=angry", token=ada).get_json()["items"]
    assert [r["id"] for r in angry] == [ids[6], ids[4], ids[2], ids[0]]
    in_session = api.call("GET", f"/api/readings?session_id={session}", token=ada).get_json()["items"]
    assert [r["id"] for r in in_session] == ids[2::-1]
    by_session = api.call("GET", f"/api/readings/by_session?session_id={session}", token=ada).get_json()["items"]
    assert by_session == in_session
    since = (base + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    later = api.call("GET", "/api/readings", token=ada, query_string={"since": since}).get_json()["items"]
    assert [r["id"] for r in later] == [ids[6], ids[5]]
    recent = api.call("GET", "/api/readings/recent?hours=0.4", token=ada).get_json()["items"]
    assert [r["id"] for r in recent] == [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1]][: len(recent)]
    assert_error(api.call("GET", "/api/readings?cursor=garbage", token=ada), 422)
    assert_error(api.call("GET", "/api/readings?limit=0", token=ada), 422)
    assert_error(api.call("GET", "/api/readings?colour=red", token=ada), 422)
    assert_error(api.call("GET", "/api/readings/by_session", token=ada), 422)


def test_trends_average_each_bucket(api, ada):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    # Two readings in one hour, one in the next: means are plain averages per bucket.
    for minutes, p in ((5, probs(happy=0.7)), (20, probs(happy=0.3)), (65, probs(sad=0.9))):
        post(api, ada, probabilities=p, timestamp=(hour + timedelta(minutes=minutes)).isoformat())
    trends = api.call("GET", "/api/readings/trends?hours=4&bucket=hour", token=ada).get_json()
    points = trends["points"]
    assert [p["count"] for p in points] == [2, 1]
    assert points[0]["start"].startswith(hour.strftime("%Y-%m-%dT%H:00:00"))
    assert points[0]["probabilities"]["happy"] == pytest.approx(0.5)
    assert points[0]["probabilities"]["sad"] == pytest.approx((0.3 / 7 + 0.7 / 7) / 2)
    assert points[1]["probabilities"]["sad"] == pytest.approx(0.9)
    readings = api.call("GET", "/api/readings", token=ada).get_json()["items"]
    first_hour = [r for r in readings if r["dominant"] == "happy" or r["probabilities"]["happy"] == 0.3]
    assert points[0]["valence"] == pytest.approx(sum(r["valence"] for r in first_hour) / 2, abs=1e-4)
    assert_error(api.call("GET", "/api/readings/trends?bucket=fortnight", token=ada), 422)


def test_distribution_shares_and_mean_intensity(api, ada):
    for p in (probs(happy=0.9), probs(happy=0.6), probs(angry=0.5), probs(neutral=1.0)):
        post(api, ada, probabilities=p)
    dist = api.call("GET", "/api/readings/distribution?hours=1", token=ada).get_json()
    assert dist["total"] == 4
    assert dist["distribution"]["happy"] == 0.5
    assert dist["distribution"]["angry"] == 0.25 and dist["distribution"]["neutral"] == 0.25
    assert dist["counts"]["sad"] == 0 and dist["mean_intensity"]["sad"] is None
    assert dist["mean_intensity"]["neutral"] == 0.0
    readings = api.call("GET", "/api/readings", token=ada).get_json()["items"]
    happy = [r["intensity"] for r in readings if r["dominant"] == "happy"]
    assert dist["mean_intensity"]["happy"] == pytest.approx(sum(happy) / 2)
    assert dist["overall_mean_intensity"] == pytest.approx(sum(r["intensity"] for r in readings) / 4)
