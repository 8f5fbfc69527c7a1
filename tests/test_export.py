import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from helpers import assert_error

CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
ONE_HOT_SAD = {**dict.fromkeys(CLASSES, 0.0), "sad": 1.0}
ONE_HOT_HAPPY = {**dict.fromkeys(CLASSES, 0.0), "happy": 1.0}
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(app, api):
    app.test_cli_runner().invoke(args=["users", "create-admin", "--email", "root@example.com",
                                       "--password", "admin password 1"])
    body = api.call("POST", "/api/auth/login", json={"email": "root@example.com", "password": "admin password 1"})
    return body.get_json()["access_token"]


def post(api, token, probabilities, minutes=0, **extra):
    body = {"probabilities": probabilities, "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), **extra}
    response = api.call("POST", "/api/readings", token=token, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def export(api, token, **query):
    return api.call("GET", "/api/export", token=token, query_string=query)


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_has_one_row_per_reading_with_values(api, ada):
    sad = post(api, ada, ONE_HOT_SAD, minutes=0, detector="face-v1")
    happy = post(api, ada, ONE_HOT_HAPPY, minutes=5)
    response = export(api, ada, format="csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="mood-mirror-readings-') and disposition.endswith('.csv"')
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ("id,session_id,source,timestamp,window_start,window_end,silence,dominant,"
                                    "confidence,uncertain,valence,arousal,intensity,p_neutral,p_calm,p_happy,p_sad,p_angry,"
                                    "p_fearful,p_disgust,p_surprised,model_version,session_name")
    rows = csv_rows(response)
    assert [row["id"] for row in rows] == [sad["id"], happy["id"]]  # oldest first
    first = rows[0]
    assert first["timestamp"] == "2025-03-01T12:00:00+00:00"
    assert first["dominant"] == "sad" and first["source"] == "manual" and first["silence"] == "false"
    assert first["uncertain"] == "false"  # confidence 1.0
    assert float(first["p_sad"]) == 1.0 and float(first["p_happy"]) == 0.0
    assert float(first["valence"]) == pytest.approx(sad["valence"]) and sad["valence"] < 0
    assert first["model_version"] == "face-v1" and first["session_id"] == "" and first["window_start"] == ""
    assert first["session_name"] == ""


def test_json_export_is_an_array_of_readings(api, ada):
    session = api.call("POST", "/api/sessions", token=ada, json={"name": "Morning"}).get_json()
    sad = post(api, ada, ONE_HOT_SAD, session_id=session["id"])
    response = export(api, ada, format="json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].endswith('.json"')
    items = json.loads(response.get_data(as_text=True))
    assert items == [{**sad, "session_name": "Morning"}]
    assert items[0]["session_id"] == session["id"] and items[0]["probabilities"]["sad"] == 1.0


def test_empty_exports_are_valid(api, ada):
    assert json.loads(export(api, ada, format="json").get_data(as_text=True)) == []
    assert export(api, ada, format="csv").get_data(as_text=True).count("\r\n") == 1  # the header only


def test_filters(api, ada):
    session = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    in_session = post(api, ada, ONE_HOT_SAD, minutes=0, session_id=session)
    happy = post(api, ada, ONE_HOT_HAPPY, minutes=10, source="stream")
    late_sad = post(api, ada, ONE_HOT_SAD, minutes=20)

    def ids(**query):
        return [item["id"] for item in json.loads(export(api, ada, **query).get_data(as_text=True))]

    assert ids(session_id=session) == [in_session["id"]]
    assert ids(dominant="sad") == [in_session["id"], late_sad["id"]]
    assert ids(source="stream") == [happy["id"]]
    assert ids(since=(T0 + timedelta(minutes=10)).isoformat()) == [happy["id"], late_sad["id"]]
    assert ids(until=(T0 + timedelta(minutes=10)).isoformat()) == [in_session["id"]]
    assert ids(dominant="sad", since=(T0 + timedelta(minutes=1)).isoformat()) == [late_sad["id"]]


@pytest.mark.parametrize("query, field", [
    ({"format": "xlsx"}, "format"),
    ({"dominant": "joy"}, "dominant"),
    ({"source": "telepathy"}, "source"),
    ({"since": "yesterday"}, "since"),
    ({"session_id": "short"}, "session_id"),
    ({"owner": "someone"}, "owner"),
])
def test_rejects_bad_filters(api, ada, query, field):
    assert field in assert_error(export(api, ada, **query), 422)["message"]


def test_needs_a_token(api):
    assert_error(api.call("GET", "/api/export"), 401)


def test_other_users_data_is_never_exported(api, ada, bob):
    post(api, ada, ONE_HOT_SAD)
    bobs = post(api, bob, ONE_HOT_HAPPY)
    assert [row["id"] for row in csv_rows(export(api, bob, format="csv"))] == [bobs["id"]]
    ada_id = api.call("GET", "/api/auth/profile", token=ada).get_json()["id"]
    assert_error(export(api, bob, user_id=ada_id), 403)
    adas_session = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    assert_error(export(api, bob, session_id=adas_session), 404)


def test_admin_exports_another_users_readings(api, ada, admin):
    adas = post(api, ada, ONE_HOT_SAD)
    ada_id = adas["user_id"]
    rows = csv_rows(export(api, admin, format="csv", user_id=ada_id))
    assert [row["id"] for row in rows] == [adas["id"]]
    assert json.loads(export(api, admin, format="json").get_data(as_text=True)) == []  # the admin's own
    assert_error(export(api, admin, user_id="0" * 24), 404)


def test_csv_injection_is_neutralised_but_numbers_stay_numbers(api, ada):
    post(api, ada, ONE_HOT_SAD, detector="=cmd()")
    post(api, ada, ONE_HOT_SAD, minutes=1, detector="@SUM(A1)")
    rows = csv_rows(export(api, ada, format="csv"))
    assert [row["model_version"] for row in rows] == ["'=cmd()", "'@SUM(A1)"]
    # Valence is legitimately negative for sadness: a number, not a neutralised string.
    assert rows[0]["valence"].startswith("-") and float(rows[0]["valence"]) < 0
    # JSON is not a spreadsheet format: it keeps the value as posted.
    items = json.loads(export(api, ada, format="json").get_data(as_text=True))
    assert items[0]["model_version"] == "=cmd()"


def test_large_export_is_streamed_in_chunks(app, api, ada):
    from app.models import EmotionReading, User

    owner = User.objects.get(email="ada@example.com")
    # The embedded wire server slows down on big insert_many: batches of 100.
    for batch in range(20):
        EmotionReading.objects.insert([
            EmotionReading(owner=owner, source="manual", timestamp=T0 + timedelta(seconds=batch * 100 + i),
                           probabilities=ONE_HOT_SAD, dominant="sad", confidence=1.0, valence=-0.5, arousal=-0.3,
                           intensity=1.0, model_version="bulk")
            for i in range(100)
        ], load_bulk=False)
    response = export(api, ada, format="csv")
    assert response.is_streamed
    chunks = list(response.response)
    assert len(chunks) > 1  # handed on piece by piece, never built whole
    text = "".join(chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in chunks)
    assert text.count("\r\n") == 2001
    json_response = export(api, ada, format="json")
    assert json_response.is_streamed
    assert len(json.loads(json_response.get_data(as_text=True))) == 2000


def test_openapi_documents_both_formats(api):
    spec = api.call("GET", "/api/openapi.json").get_json()
    content = spec["paths"]["/api/export"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
