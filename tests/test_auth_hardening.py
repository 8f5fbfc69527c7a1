"""Sign-in, tokens and the admin session against the running web process (real Redis, the
MongoDB-wire server), as the outside review attacked them. Clients connect from different
loopback addresses (127.0.0.x) so the server sees different client addresses.

    a guesser locks the owner out     5 wrong passwords from one address; the owner's right
                                      password from another gets in
    registration as an oracle         an address told "email_taken" 5 times in an hour is
                                      refused registration (429) for the rest of it
    admin cookie after sign-out       a captured cookie is refused once its admin signed out,
                                      and after ADMIN_SESSION_SECONDS anyway
    tokens signed with the real key   without `exp` or `jti`, or with a subject that is no
                                      ObjectId: 401, never 200 or 500
"""
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import jwt
import pymongo
import pytest
import redis as redis_lib
import requests
from requests.adapters import HTTPAdapter

from devtools.stack import ROOT, Stack
from mood_mirror.client import ApiClientError

PASSWORD = "correct horse battery"
SECRET = "hardening-test-signing-key-" + "x" * 40
ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "admin password 1"
ADMIN_SESSION_SECONDS = 6

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    redis_lib.Redis.from_url(redis_url).flushdb()
    own_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_hardening")
    pymongo.MongoClient(own_mongo).drop_database("moodmirror_hardening")
    running = Stack(own_mongo, redis_url, tmp_path_factory.mktemp("stack"), workers=0,
                    extra_env={"RATELIMIT_ENABLED": "true", "JWT_SECRET_KEY": SECRET, "BCRYPT_LOG_ROUNDS": "4",
                               "ADMIN_SESSION_SECONDS": str(ADMIN_SESSION_SECONDS)}).start()
    yield running
    running.stop()


class FromAddress(HTTPAdapter):
    """Connections from a given local address."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(address):
    http = requests.Session()
    http.mount("http://", FromAddress(address))
    return http


def register(stack, email, address="127.0.0.10"):
    answer = client_at(address).post(f"{stack.base_url}/api/auth/register", json={"email": email, "password": PASSWORD},
                                     timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def login(stack, address, email, password):
    return client_at(address).post(f"{stack.base_url}/api/auth/login", json={"email": email, "password": password},
                                   timeout=10)


def test_a_guesser_cannot_lock_the_owner_out(stack):
    register(stack, "owner@example.com")
    for _ in range(5):
        assert login(stack, "127.0.0.2", "owner@example.com", "wrong password!").status_code == 401
    stopped = login(stack, "127.0.0.2", "owner@example.com", PASSWORD)
    assert stopped.status_code == 429 and stopped.json()["error"]["code"] == "rate_limited"
    assert int(stopped.headers["Retry-After"]) >= 1

    owner = login(stack, "127.0.0.3", "owner@example.com", PASSWORD)
    assert owner.status_code == 200, owner.text
    # One more address guessing: one guess, then it waits as well.
    assert login(stack, "127.0.0.4", "owner@example.com", "another guess!").status_code == 401
    assert login(stack, "127.0.0.4", "owner@example.com", PASSWORD).status_code == 429


def test_registration_is_no_cheap_oracle_of_who_has_an_account(stack):
    for n in range(5):
        register(stack, f"member{n}@example.com")
    prober = client_at("127.0.0.5")
    answers = [prober.post(f"{stack.base_url}/api/auth/register", timeout=10,
                           json={"email": f"member{n}@example.com", "password": PASSWORD}) for n in range(5)]
    assert [a.status_code for a in answers] == [409] * 5
    assert all(a.json()["error"]["code"] == "email_taken" for a in answers)
    refused = prober.post(f"{stack.base_url}/api/auth/register", timeout=10,
                          json={"email": "new@example.com", "password": PASSWORD})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    # Everyone else registers as before.
    register(stack, "new@example.com", address="127.0.0.6")


# ---------------------------------------------------------------------------------------------
# The admin session


@pytest.fixture(scope="module")
def admin(stack):
    created = subprocess.run(["flask", "--app", "app:create_app", "users", "create-admin", "--email", ADMIN_EMAIL,
                              "--password", ADMIN_PASSWORD], cwd=ROOT, env=stack.env, capture_output=True, text=True)
    assert created.returncode == 0, created.stderr


def csrf(html):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def signed_in_admin(stack):
    browser = client_at("127.0.0.7")
    token = csrf(browser.get(f"{stack.base_url}/admin/login", timeout=10).text)
    answer = browser.post(f"{stack.base_url}/admin/login", allow_redirects=False, timeout=10,
                          data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.text[:500]
    return browser


def opens_admin(stack, cookie):
    """Whether a browser holding only this session cookie gets the admin home page."""
    answer = requests.get(f"{stack.base_url}/admin/", cookies={"session": cookie}, allow_redirects=False, timeout=10)
    if answer.status_code == 302:
        assert urlsplit(answer.headers["Location"]).path == "/admin/login"
        return False
    assert answer.status_code == 200, answer.status_code
    return True


def test_a_captured_admin_cookie_is_worthless_after_sign_out(stack, admin):
    browser = signed_in_admin(stack)
    captured = browser.cookies["session"]
    assert opens_admin(stack, captured)
    home = browser.get(f"{stack.base_url}/admin/", timeout=10).text
    signed_out = browser.post(f"{stack.base_url}/admin/logout", data={"csrf_token": csrf(home)}, allow_redirects=False,
                              timeout=10)
    assert signed_out.status_code == 302
    assert not opens_admin(stack, captured), "the captured cookie still opens the admin after sign-out"


def test_admin_sessions_expire(stack, admin):
    browser = signed_in_admin(stack)
    cookie = browser.cookies["session"]
    expires = next(c.expires for c in browser.cookies if c.name == "session")
    assert expires is not None and expires <= time.time() + ADMIN_SESSION_SECONDS + 5, "the cookie expires too"
    assert opens_admin(stack, cookie)
    time.sleep(ADMIN_SESSION_SECONDS + 1)
    assert not opens_admin(stack, cookie), "the admin session outlived ADMIN_SESSION_SECONDS"


# ---------------------------------------------------------------------------------------------
# Tokens signed with the real key


def forged(user_id, drop=(), **claims):
    now = datetime.now(UTC)
    payload = {"sub": user_id, "type": "access", "fresh": False, "jti": "forged-" + str(time.monotonic_ns()),
               "iat": now, "nbf": now, "exp": now + timedelta(minutes=15), "role": "user", **claims}
    for name in drop:
        payload.pop(name)
    return jwt.encode(payload, SECRET, algorithm="HS256")


def profile_with(stack, token):
    return requests.get(f"{stack.base_url}/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_the_real_key_s_own_tokens_work(stack):
    user_id = register(stack, "token-owner@example.com")["user"]["id"]
    assert profile_with(stack, forged(user_id)).status_code == 200  # the forgery is exact: only what differs counts


@pytest.mark.parametrize("drop", [("exp",), ("jti",), ("exp", "jti")])
def test_a_token_without_exp_or_jti_is_refused(stack, drop):
    user_id = register(stack, f"no-{'-'.join(drop)}@example.com")["user"]["id"]
    answer = profile_with(stack, forged(user_id, drop=drop))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "token_invalid"


@pytest.mark.parametrize("subject", ["not-an-object-id", "0" * 23, 12345, {"$ne": None}])
def test_a_subject_that_is_no_object_id_is_a_401(stack, subject):
    answer = profile_with(stack, forged(subject))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] in ("user_not_found", "token_invalid")


def test_a_refresh_token_without_exp_cannot_be_logged_out_into_a_500(stack):
    body = register(stack, "logout@example.com")
    refresh = forged(body["user"]["id"], drop=("exp",), type="refresh")
    answer = requests.post(f"{stack.base_url}/api/auth/logout", json={"refresh_token": refresh}, timeout=10,
                           headers={"Authorization": f"Bearer {body['access_token']}"})
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("case", ["no exp", "no jti", "sub not an id"])
def test_socketio_refuses_the_same_tokens(stack, case):
    from mood_mirror.client import MoodMirrorClient

    user_id = register(stack, f"sio-{case.replace(' ', '-')}@example.com")["user"]["id"]
    token = {"no exp": lambda: forged(user_id, drop=("exp",)), "no jti": lambda: forged(user_id, drop=("jti",)),
             "sub not an id": lambda: forged("not-an-object-id")}[case]()
    with pytest.raises(ApiClientError) as refused:
        MoodMirrorClient(stack.base_url, access_token=token).live_stream(wait_timeout=10).connect()
    assert refused.value.code in ("token_invalid", "user_not_found"), refused.value
