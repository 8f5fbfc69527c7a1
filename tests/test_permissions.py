"""The permission matrix: every route under /api and /admin, every method, for seven callers.

The routes come from `app.url_map`, so a route added without a row in EXPECTED fails
`test_every_route_has_a_row` (and a row whose route is gone fails it too). Each cell is one
request against real objects (a session, a reading, an analysis job, an environment response)
owned by "owner", in a fresh database for every cell that may write. Callers:

    owner      the user who owns the objects          other     another signed-in user
    admin      an admin (bearer token for /api; for /admin the admin's signed-in session cookie)
    anonymous  no credentials                         expired   owner's token, past its expiry
    revoked    owner's token after logout             tampered  owner's token with sub/role
                                                                changed to the admin's, unsigned

Besides the status, every cell checks that a refused request (3xx/4xx) wrote nothing (document
counts before and after) and that nothing "other" receives mentions the owner's objects.

The Socket.IO rooms are checked at the end against the real web process (tests/stack.py).
"""
import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta

import mongoengine
import pymongo
import pytest
import redis as redis_lib
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from app.auth.accounts import delete_account, hash_password
from app.auth.tokens import revoke
from app.extensions import limiter
from app.models import AnalysisJob, CollectiveEmotion, EmotionSession, EnvironmentResponse, User
from app.models.base import utcnow

from audio_fixtures import encode
from helpers import wait_for

IDENTITIES = ("owner", "other", "admin", "anonymous", "expired", "revoked", "tampered")
PASSWORD = "correct horse battery"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}
SAFE_METHODS = {"GET"}
ROUTE_PREFIXES = ("/api", "/admin")


def row(owner, other, admin, anonymous=401, expired=401, revoked=401, tampered=401):
    return dict(zip(IDENTITIES, (owner, other, admin, anonymous, expired, revoked, tampered)))


def public(status):
    """Anyone, whatever token they send (a bad token on a public endpoint is ignored)."""
    return row(status, status, status, status, status, status, status)


def own_object(ok):
    """The owner's object: its owner and admins; another user gets 404, as if it did not exist."""
    return row(ok, 404, ok)


def own_write(ok):
    """Adding data under the owner's object: its owner only (an admin reads anyone's data, but
    never files new data under another user's session)."""
    return row(ok, 404, 404)


def self_service(ok):
    """About the caller's own account or data: any signed-in user."""
    return row(ok, ok, ok)


def admins_only(ok):
    return row(403, 403, ok)


def admin_page(ok):
    """/admin: only the admin's signed-in session opens it; bearer tokens never do, and
    everyone else is sent to /admin/login (302)."""
    return row(302, 302, ok, 302, 302, 302, 302)


# Every route under /api and /admin, every method. `body`/`query` say what the request sends.
EXPECTED = {
    ("POST", "/api/auth/register"): public(201),
    ("POST", "/api/auth/login"): public(200),
    ("POST", "/api/auth/refresh"): self_service(200),  # with refresh tokens
    ("POST", "/api/auth/logout"): self_service(204),
    ("POST", "/api/auth/logout-all"): self_service(204),
    ("POST", "/api/auth/password-reset"): public(202),  # the same answer for any address
    ("POST", "/api/auth/password-reset/confirm"): public(400),  # about the link's token, not the caller
    ("GET", "/api/auth/profile"): self_service(200),
    ("PUT", "/api/auth/profile"): self_service(200),
    ("DELETE", "/api/auth/profile"): self_service(204),
    ("DELETE", "/api/auth/profile/voice-baseline"): self_service(204),
    ("POST", "/api/analyze"): own_write(202),  # into the owner's session
    ("GET", "/api/analyze/<job_id>"): own_object(200),
    ("GET", "/api/results"): self_service(200),
    ("POST", "/api/readings"): own_write(201),  # into the owner's session
    ("GET", "/api/readings"): self_service(200),
    ("GET", "/api/readings/<reading_id>"): own_object(200),
    ("GET", "/api/readings/by_session"): own_object(200),
    ("GET", "/api/readings/recent"): self_service(200),
    ("GET", "/api/readings/trends"): own_object(200),  # of the owner's session
    ("GET", "/api/readings/distribution"): own_object(200),  # of the owner's session
    ("GET", "/api/sessions"): self_service(200),
    ("POST", "/api/sessions"): self_service(201),
    ("GET", "/api/sessions/active"): self_service(200),
    ("GET", "/api/sessions/<session_id>"): own_object(200),
    ("DELETE", "/api/sessions/<session_id>"): own_object(204),
    ("POST", "/api/sessions/<session_id>/end"): own_object(200),
    ("GET", "/api/sessions/<session_id>/analytics"): own_object(200),
    ("GET", "/api/sessions/<session_id>/insights"): own_object(200),
    ("GET", "/api/collective"): public(200),
    ("GET", "/api/collective/current"): public(200),
    ("GET", "/api/collective/history"): public(200),
    ("GET", "/api/collective/insights"): public(200),
    ("GET", "/api/environment"): own_object(200),  # of the owner's session
    ("GET", "/api/environment/for_session"): own_object(200),
    ("GET", "/api/environment/latest_for_session"): own_object(200),
    ("GET", "/api/export"): own_object(200),  # of the owner's session
    ("GET", "/api/system/health"): public(503),  # public; 503 because no worker runs in-process
    ("GET", "/api/system/stats"): admins_only(200),
    ("GET", "/api/docs"): public(200),
    ("GET", "/api/openapi.json"): public(200),
    ("GET", "/admin/"): admin_page(200),
    ("GET", "/admin/login"): public(200),
    ("POST", "/admin/login"): public(400),  # no CSRF token: refused before any credential check
    ("POST", "/admin/logout"): public(302),  # to /admin/login; without a CSRF token it signs no one out
    ("GET", "/admin/static/<path:filename>"): public(200),
}

# Flask-Admin's views, one per model. Users and sessions may be edited; the pipeline's documents
# are read-only; nothing is created or exported from the admin. Every POST below is sent without
# a CSRF token, so even the admin's is refused (a redirect back with a flash) and writes nothing.
ADMIN_MODELS = {"users": True, "sessions": True, "readings": False, "environment": False,
                "collective": False, "jobs": False}  # name: can_edit
for _name, _can_edit in ADMIN_MODELS.items():
    _base = f"/admin/{_name}"
    EXPECTED.update({
        ("GET", f"{_base}/"): admin_page(200),
        ("GET", f"{_base}/details/"): admin_page(200),
        ("GET", f"{_base}/edit/"): admin_page(200 if _can_edit else 302),
        ("POST", f"{_base}/edit/"): admin_page(200 if _can_edit else 302),  # the form again, with its CSRF error
        ("GET", f"{_base}/new/"): admin_page(302),
        ("POST", f"{_base}/new/"): admin_page(302),
        ("POST", f"{_base}/delete/"): admin_page(302),
        ("POST", f"{_base}/action/"): admin_page(302),
        ("GET", f"{_base}/export/<export_type>/"): admin_page(302),
        ("GET", f"{_base}/ajax/lookup/"): admin_page(404),  # no ajax fields are configured
        ("POST", f"{_base}/ajax/update/"): admin_page(404),
        ("GET", f"{_base}/api/file/"): admin_page(404),
    })


def routes(app):
    """(method, rule) for every route under /api and /admin."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(ROUTE_PREFIXES):
            found |= {(method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_route_has_a_row(app):
    actual = routes(app)
    assert not actual - set(EXPECTED), f"routes without a row in EXPECTED: {sorted(actual - set(EXPECTED))}"
    assert not set(EXPECTED) - actual, f"rows for routes that do not exist: {sorted(set(EXPECTED) - actual)}"


# ---------------------------------------------------------------------------------------------
# The world each cell runs in.


def tamper(token, **claims):
    """The token with its payload changed and the signature left as it was."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def count_documents():
    db = mongoengine.get_db()
    return {name: db[name].count_documents({}) for name in db.list_collection_names()}


@dataclass
class World:
    app: object
    client: object
    users: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)
    access: dict = field(default_factory=dict)
    refresh: dict = field(default_factory=dict)
    emails = itertools.count()

    def build(self):
        db = mongoengine.get_db()
        for name in db.list_collection_names():
            db[name].delete_many({})
        self.app.extensions["redis"].flushdb()
        for name, role in (("owner", "user"), ("other", "user"), ("admin", "admin")):
            self.users[name] = User(email=f"{name}{next(self.emails)}@example.com", display_name=name, role=role,
                                    password_hash=hash_password(PASSWORD)).save()
        with self.app.test_request_context():
            for name, user in self.users.items():
                self.access[name] = create_access_token(identity=user, fresh=True)
                self.refresh[name] = create_refresh_token(identity=user)
            owner, admin = self.users["owner"], self.users["admin"]
            for kind, make in (("access", create_access_token), ("refresh", create_refresh_token)):
                store = getattr(self, kind)
                store["expired"] = make(identity=owner, expires_delta=timedelta(seconds=-30))
                store["revoked"] = make(identity=owner)
                revoke(decode_token(store["revoked"]))
                store["tampered"] = tamper(make(identity=owner), sub=str(admin.id), role="admin")
        auth = {"Authorization": f"Bearer {self.access['owner']}"}
        session = self.client.post("/api/sessions", json={"name": "private"}, headers=auth).get_json()
        reading = self.client.post("/api/readings", headers=auth,
                                   json={"probabilities": PROBABILITIES, "session_id": session["id"]}).get_json()
        session_doc = EmotionSession.objects(id=session["id"]).get()
        job = AnalysisJob(owner=owner, session=session_doc, filename="private.wav", content_type="audio/wav",
                          size_bytes=44, status="finished", progress=1.0).save()
        environment = EnvironmentResponse.objects(session=session_doc).get()
        now = utcnow()
        snapshot = CollectiveEmotion(created_at=now, window_start=now - timedelta(minutes=5), window_end=now).save()
        self.ids = {"session_id": session["id"], "reading_id": reading["id"], "job_id": str(job.id),
                    "environment_id": str(environment.id), "collective_id": str(snapshot.id),
                    "user_id": str(owner.id)}
        return self

    def secrets_of_owner(self):
        """What must never reach another user: the owner's ids and email."""
        return [self.ids[name] for name in ("session_id", "reading_id", "job_id", "environment_id")] + [
            self.users["owner"].email]


ADMIN_MODEL_IDS = {"users": "user_id", "sessions": "session_id", "readings": "reading_id",
                   "environment": "environment_id", "collective": "collective_id", "jobs": "job_id"}


def request_for(world, method, rule, identity):
    """(path, keyword arguments for the test client) of the cell's request."""
    ids = world.ids
    path = rule.replace("<job_id>", ids["job_id"]).replace("<reading_id>", ids["reading_id"]).replace(
        "<session_id>", ids["session_id"])
    kwargs = {"headers": {}}
    tokens = world.refresh if rule == "/api/auth/refresh" else world.access
    if identity in tokens and not (rule.startswith("/admin") and identity == "admin"):
        kwargs["headers"]["Authorization"] = f"Bearer {tokens[identity]}"
    session_query = {"query_string": {"session_id": ids["session_id"]}}
    if rule == "/api/auth/register":
        kwargs["json"] = {"email": f"new{next(world.emails)}@example.com", "password": PASSWORD}
    elif rule == "/api/auth/login":
        kwargs["json"] = {"email": world.users["owner"].email, "password": PASSWORD}
    elif (method, rule) == ("PUT", "/api/auth/profile"):
        kwargs["json"] = {"display_name": "Renamed"}
    elif rule == "/api/auth/password-reset":
        kwargs["json"] = {"email": world.users["owner"].email}
    elif rule == "/api/auth/password-reset/confirm":
        kwargs["json"] = {"token": "not.a-real.token", "new_password": "a new good password"}
    elif rule == "/api/analyze":
        kwargs.update(session_query, data=encode("wav_s16", seconds=1.5), content_type="audio/wav")
    elif (method, rule) == ("POST", "/api/readings"):
        kwargs["json"] = {"probabilities": PROBABILITIES, "session_id": ids["session_id"]}
    elif (method, rule) == ("POST", "/api/sessions"):
        kwargs["json"] = {"name": "mine"}
    elif rule in ("/api/readings/by_session", "/api/readings/trends", "/api/readings/distribution",
                  "/api/environment", "/api/environment/for_session", "/api/environment/latest_for_session",
                  "/api/export"):
        kwargs.update(session_query)
    elif rule == "/admin/static/<path:filename>":
        path = "/admin/static/admin/css/bootstrap4/admin.css"
    elif rule.startswith("/admin/") and rule.count("/") >= 3:
        model = rule.split("/")[2]
        doc_id = ids[ADMIN_MODEL_IDS[model]]
        path = path.replace("<export_type>", "csv")
        if rule.endswith(("/details/", "/edit/")):
            kwargs["query_string"] = {"id": doc_id}
        if rule.endswith("/delete/"):
            kwargs["data"] = {"id": doc_id}
        elif rule.endswith("/action/"):
            kwargs["data"] = {"action": "delete", "rowid": doc_id}
        elif rule.endswith("/edit/") and method == "POST":
            kwargs["data"] = {"display_name": "hijacked", "name": "hijacked"}
        elif rule.endswith("/new/") and method == "POST":
            kwargs["data"] = {"display_name": "made", "name": "made"}
        elif rule.endswith("/ajax/update/"):
            kwargs["data"] = {"list_form_pk": doc_id, "display_name": "hijacked"}
    return path, kwargs


def sign_in_admin(world, client):
    import re

    html = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/admin/login", data={"email": world.users["admin"].email, "password": PASSWORD,
                                                 "csrf_token": csrf})
    assert response.status_code == 302, response.get_data(as_text=True)


def run_cell(world, method, rule, identity):
    client = world.app.test_client()  # its own cookie jar
    limiter.reset()
    if rule.startswith("/admin") and identity == "admin":
        sign_in_admin(world, client)
    path, kwargs = request_for(world, method, rule, identity)
    before = count_documents()
    response = client.open(path, method=method, **kwargs)
    return response, before, count_documents()


# Routes whose answer is about the credentials in the body, not about the caller's token.
CREDENTIAL_ROUTES = {"/api/auth/login", "/api/auth/register"}


def check_cell(world, method, rule, identity):
    """Problems with one cell (none when it is as expected), and whether it changed the world."""
    response, before, after = run_cell(world, method, rule, identity)
    expected = EXPECTED[(method, rule)][identity]
    problems = []
    if response.status_code != expected:
        problems.append(f"{method} {rule} as {identity}: {response.status_code}, expected {expected}: "
                        f"{response.get_data(as_text=True)[:200]}")
    if response.status_code >= 300 and before != after:
        problems.append(f"{method} {rule} as {identity}: refused ({response.status_code}) "
                        f"but wrote {before} -> {after}")
    if identity == "other" and response.status_code < 300 and rule not in CREDENTIAL_ROUTES:
        body = response.get_data(as_text=True)
        leaked = [secret for secret in world.secrets_of_owner() if secret in body]
        if leaked:
            problems.append(f"{method} {rule} as other: the answer shows the owner's {leaked}")
    return problems, response.status_code < 300 or before != after


def test_permission_matrix(app, client):
    """Every cell of EXPECTED. Reads share a world per route; a write that went through (or
    changed anything) gets the next cell a fresh world."""
    problems = []
    world = World(app, client)
    for (method, rule) in sorted(EXPECTED, key=lambda key: (key[1], key[0])):
        world.build()
        for identity in IDENTITIES:
            cell_problems, changed = check_cell(world, method, rule, identity)
            problems += cell_problems
            if changed and method not in SAFE_METHODS:
                world.build()
    assert not problems, "\n".join(problems)


USER_ID_ENDPOINTS = ("/api/readings", "/api/readings/trends", "/api/readings/distribution", "/api/sessions",
                     "/api/sessions/active", "/api/environment", "/api/export")


@pytest.mark.parametrize("path", USER_ID_ENDPOINTS)
def test_user_id_reads_another_users_data_for_admins_only(app, client, path):
    world = World(app, client).build()
    statuses = {}
    for identity in ("owner", "other", "admin"):
        limiter.reset()
        response = client.get(path, query_string={"user_id": world.ids["user_id"]},
                              headers={"Authorization": f"Bearer {world.access[identity]}"})
        statuses[identity] = response.status_code
        if identity == "admin" and path not in ("/api/readings/trends", "/api/readings/distribution"):
            body = response.get_data(as_text=True)
            assert world.ids["session_id"] in body, f"{path}: the admin sees the owner's data"
    assert statuses == {"owner": 200, "other": 403, "admin": 200}, path


def test_revoked_refresh_token_and_deleted_account_tokens_are_refused(app, client):
    world = World(app, client).build()
    owner_token = world.access["owner"]
    # Logging out with the refresh token revokes it too.
    auth = {"Authorization": f"Bearer {owner_token}"}
    logout = client.post("/api/auth/logout", json={"refresh_token": world.refresh["owner"]}, headers=auth)
    assert logout.status_code == 204
    refused = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {world.refresh['owner']}"})
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "token_revoked"
    # A deleted account's still-unexpired token is refused everywhere.
    other = {"Authorization": f"Bearer {world.access['other']}"}
    assert client.delete("/api/auth/profile", headers=other).status_code == 204
    gone = client.get("/api/sessions", headers=other)
    assert gone.status_code == 401
    for path in ("/api/readings/trends", f"/api/sessions/{world.ids['session_id']}/analytics"):
        assert client.get(path, headers=other).status_code == 401, path


@pytest.mark.parametrize("path", ["/api/readings/trends", "/api/sessions/{session_id}/analytics", "/api/sessions"])
def test_an_account_deleted_in_the_admin_refuses_its_unrevoked_tokens(app, client, path):
    """The admin and the CLI delete an account without revoking its tokens: the user lookup
    refuses them, and so do endpoints that take the caller from the token (caller=True), from
    the account's gone mark in Redis."""
    world = World(app, client).build()
    with app.app_context():
        delete_account(User.objects.get(id=world.users["owner"].id))
    limiter.reset()
    answer = client.get(path.format(**world.ids), headers={"Authorization": f"Bearer {world.access['owner']}"})
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "user_not_found", answer.get_json()


CALLER_ENDPOINTS = ("/api/sessions/{session_id}/analytics", "/api/sessions/{session_id}/insights",
                    "/api/readings/trends?user_id={user_id}", "/api/readings/distribution?user_id={user_id}")


@pytest.mark.parametrize("path", CALLER_ENDPOINTS)
def test_a_role_changed_in_the_store_counts_at_once_where_the_user_is_not_loaded(app, client, path):
    """Endpoints that take the caller from the token alone (caller=True) read whether the caller
    is an admin from the stored user, not from the token's role claim, which an admin's change
    of role (in /admin) leaves as it was."""
    world = World(app, client).build()
    url = path.format(**world.ids)

    def status(identity):
        limiter.reset()
        return client.get(url, headers={"Authorization": f"Bearer {world.access[identity]}"}).status_code

    assert (status("owner"), status("admin")) == (200, 200)
    denied = 403 if "user_id" in path else 404
    assert status("other") == denied
    world.users["admin"].update(set__role="user")
    world.users["other"].update(set__role="admin")
    assert (status("admin"), status("other")) == (denied, 200)


def test_alg_none_and_foreign_key_tokens_are_refused(app, client):
    world = World(app, client).build()
    header, payload, _ = world.access["owner"].split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    import jwt as pyjwt

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for token in (f"{none_header}.{payload}.", pyjwt.encode(claims, "another-secret-key-of-32-characters!!", "HS256")):
        response = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


# ---------------------------------------------------------------------------------------------
# Socket.IO: connecting and joining rooms, against the real web process.


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    from devtools.stack import Stack

    own_redis = redis_url.rsplit("/", 1)[0] + "/11"
    redis_lib.Redis.from_url(own_redis).flushdb()
    own_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_permissions")
    running = Stack(own_mongo, own_redis, tmp_path_factory.mktemp("stack"), workers=0,
                    extra_env={"JWT_SECRET_KEY": STACK_JWT_SECRET}).start()
    yield running
    running.stop()


STACK_JWT_SECRET = "permissions-test-jwt-secret-not-for-production-0"


@pytest.fixture(scope="module")
def sio_users(stack):
    """Owner (with a session), other, admin, and the bad tokens, on the stack."""
    from mood_mirror.client import MoodMirrorClient

    people = {}
    for name in ("owner", "other", "admin", "revoked"):
        client = MoodMirrorClient(stack.base_url)
        client.register(f"{name}@example.com", PASSWORD)
        people[name] = client
    db = pymongo.MongoClient(stack.mongo_uri).get_default_database()
    db.users.update_one({"email": "admin@example.com"}, {"$set": {"role": "admin"}})
    people["admin"] = MoodMirrorClient(stack.base_url)
    people["admin"].login("admin@example.com", PASSWORD)
    session_id = people["owner"].json("POST", "/api/sessions", json={"name": "private"})["id"]
    people["revoked"].json("POST", "/api/auth/logout")  # revokes the access token it still holds
    import jwt as pyjwt

    owner_claims = json.loads(base64.urlsafe_b64decode(
        people["owner"].access_token.split(".")[1] + "=" * (-len(people["owner"].access_token.split(".")[1]) % 4)))
    expired = pyjwt.encode({**owner_claims, "exp": int(utcnow().timestamp()) - 60}, STACK_JWT_SECRET, "HS256")
    admin_id = db.users.find_one({"email": "admin@example.com"})["_id"]
    tokens = {"anonymous": None, "expired": expired, "revoked": people["revoked"].access_token,
              "tampered": tamper(people["owner"].access_token, sub=str(admin_id), role="admin")}
    return people, tokens, session_id


def connect(stack, token):
    from mood_mirror.client import MoodMirrorClient

    return MoodMirrorClient(stack.base_url, access_token=token).live_stream(wait_timeout=10)


@pytest.mark.parametrize("kind,code", [("anonymous", "token_missing"), ("expired", "token_expired"),
                                       ("revoked", "token_revoked"), ("tampered", "token_invalid")])
def test_socketio_refuses_bad_tokens(stack, sio_users, kind, code):
    from mood_mirror.client import ApiClientError

    _, tokens, _ = sio_users
    with pytest.raises(ApiClientError) as refused:
        connect(stack, tokens[kind]).connect()
    assert refused.value.code == code




def joined_events(live):
    events = []
    live.sio.on("joined", events.append)
    return events


@pytest.mark.parametrize("who,allowed", [("owner", True), ("other", False), ("admin", True)])
def test_socketio_session_room(stack, sio_users, who, allowed):
    people, _, session_id = sio_users
    with connect(stack, people[who].access_token) as live:
        joined = joined_events(live)
        live.sio.emit("join", {"session_id": session_id})
        assert wait_for(lambda: joined or live.errors)
        if allowed:
            assert joined == [{"room": f"session:{session_id}"}] and live.errors == []
        else:
            assert joined == [] and [e["code"] for e in live.errors] == ["session_not_found"]
            # Nor may another user stream into the owner's session.
            live.sio.emit("start", {"format": {"encoding": "s16le", "sample_rate": 16000, "channels": 1},
                                    "session_id": session_id})
            assert wait_for(lambda: len(live.errors) == 2)
            assert live.errors[1]["code"] == "session_not_found"


@pytest.mark.parametrize("who", ["owner", "other", "admin"])
def test_socketio_collective_room_for_any_signed_in_user(stack, sio_users, who):
    people, _, _ = sio_users
    with connect(stack, people[who].access_token) as live:
        joined = joined_events(live)
        live.join_collective()
        assert wait_for(lambda: joined or live.errors)
        assert joined == [{"room": "collective"}] and live.errors == []


def test_admin_forms_without_csrf_token_change_nothing(app, client):
    """The admin's own POSTs, sent without the form's CSRF token (a cross-site request would
    have none), edit and delete nothing."""
    world = World(app, client).build()
    browser = app.test_client()
    sign_in_admin(world, browser)
    before = count_documents()
    for model, id_name in ADMIN_MODEL_IDS.items():
        doc_id = world.ids[id_name]
        browser.post(f"/admin/{model}/edit/?id={doc_id}", data={"display_name": "hijacked", "name": "hijacked",
                                                                 "role": "admin", "status": "ended"})
        browser.post(f"/admin/{model}/delete/", data={"id": doc_id})
        browser.post(f"/admin/{model}/action/", data={"action": "delete", "rowid": doc_id})
    assert count_documents() == before
    owner = User.objects(id=world.ids["user_id"]).get()
    assert (owner.display_name, owner.role) == ("owner", "user")
    session = EmotionSession.objects(id=world.ids["session_id"]).get()
    assert (session.name, session.status) == ("private", "active")
