import time
from datetime import timedelta

import pytest

from helpers import assert_error

PASSWORD = "correct horse battery"


def test_register_signs_in_and_normalises_email(api):
    body = api.register(email="Ada@Example.COM", display_name="Ada")
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["refresh_token"]
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["display_name"] == "Ada"
    assert body["user"]["role"] == "user"
    assert "password" not in body["user"] and "password_hash" not in body["user"]
    profile = api.call("GET", "/api/auth/profile", token=body["access_token"])
    assert profile.status_code == 200
    assert profile.get_json()["email"] == "ada@example.com"


def test_email_is_unique_case_insensitively(api):
    api.register(email="ada@example.com")
    response = api.call("POST", "/api/auth/register", json={"email": "ADA@example.com", "password": PASSWORD})
    error = assert_error(response, 409, "email_taken")
    assert error["details"] == {"field": "email"}


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "aaaaaaaaaaaaaa"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "a@example.com"}, "password"),
        ({"email": {"$gt": ""}, "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": {"$ne": None}}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": ""}, "display_name"),
    ],
)
def test_register_rejects_bad_input_naming_the_field(api, payload, field):
    error = assert_error(api.call("POST", "/api/auth/register", json=payload), 422, "validation_error")
    assert field in error["details"]["fields"]["json"]
    assert field in error["message"]


def test_password_equal_to_email_is_refused(api):
    error = assert_error(api.call("POST", "/api/auth/register",
                                  json={"email": "longname@example.com", "password": "LongName@example.com"}), 422)
    assert "password" in error["message"]


def test_login_and_same_answer_for_unknown_email_and_wrong_password(api):
    api.register()
    ok = api.call("POST", "/api/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.get_json()["user"]["last_login_at"]
    wrong = api.call("POST", "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD + "x"})
    unknown = api.call("POST", "/api/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert_error(wrong, 401, "invalid_credentials")
    assert wrong.get_json() == unknown.get_json()
    assert unknown.status_code == 401


def test_login_injection_is_a_validation_error_not_a_query(api):
    api.register()
    response = api.call("POST", "/api/auth/login", json={"email": {"$gt": ""}, "password": {"$gt": ""}})
    error = assert_error(response, 422)
    assert set(error["details"]["fields"]["json"]) == {"email", "password"}


def test_refresh_gives_a_new_access_token(api):
    tokens = api.register()
    response = api.call("POST", "/api/auth/refresh", token=tokens["refresh_token"])
    assert response.status_code == 200
    access = response.get_json()["access_token"]
    assert api.call("GET", "/api/auth/profile", token=access).status_code == 200
    # An access token is not a refresh token, and the other way round.
    assert_error(api.call("POST", "/api/auth/refresh", token=tokens["access_token"]), 401)
    assert_error(api.call("GET", "/api/auth/profile", token=tokens["refresh_token"]), 401)


def test_access_token_expires_and_refresh_recovers(app, api):
    lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=1)
    try:
        tokens = api.register()
    finally:
        app.config["JWT_ACCESS_TOKEN_EXPIRES"] = lifetime
    time.sleep(1.5)
    assert_error(api.call("GET", "/api/auth/profile", token=tokens["access_token"]), 401, "token_expired")
    fresh = api.call("POST", "/api/auth/refresh", token=tokens["refresh_token"]).get_json()["access_token"]
    assert api.call("GET", "/api/auth/profile", token=fresh).status_code == 200


def test_logout_revokes_access_and_refresh_tokens(app, api):
    tokens = api.register()
    response = api.call("POST", "/api/auth/logout", token=tokens["access_token"],
                        json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert_error(api.call("GET", "/api/auth/profile", token=tokens["access_token"]), 401, "token_revoked")
    assert_error(api.call("POST", "/api/auth/refresh", token=tokens["refresh_token"]), 401, "token_revoked")
    # The revocation entries expire with the tokens, so the list cannot grow without bound.
    ttls = [app.extensions["redis"].ttl(key) for key in app.extensions["redis"].scan_iter("jwt:revoked:*")]
    assert len(ttls) == 2 and all(0 < ttl <= 30 * 24 * 3600 for ttl in ttls)


def test_logout_rejects_a_foreign_or_bogus_refresh_token(api):
    ada = api.register()
    bob = api.register(email="bob@example.com")
    error = assert_error(api.call("POST", "/api/auth/logout", token=ada["access_token"],
                                  json={"refresh_token": bob["refresh_token"]}), 422)
    assert "refresh_token" in error["details"]["fields"]["json"]
    assert_error(api.call("POST", "/api/auth/logout", token=ada["access_token"],
                          json={"refresh_token": "garbage"}), 422)
    # Nothing was revoked by the refused calls.
    assert api.call("GET", "/api/auth/profile", token=ada["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "token_missing"),
        ("Bearer not.a.jwt", "token_invalid"),
        ("Basic abc", "token_missing"),
    ],
)
def test_missing_or_malformed_tokens(api, header, code):
    headers = {"Authorization": header} if header else {}
    assert_error(api.call("GET", "/api/auth/profile", headers=headers), 401, code)


def test_tampered_token_is_rejected(api):
    tokens = api.register()
    header, payload, signature = tokens["access_token"].split(".")
    tampered = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert_error(api.call("GET", "/api/auth/profile", token=tampered), 401, "token_invalid")


def test_profile_update_display_name_and_password(api):
    tokens = api.register()
    token = tokens["access_token"]
    response = api.call("PUT", "/api/auth/profile", token=token, json={"display_name": "Countess"})
    assert response.status_code == 200 and response.get_json()["display_name"] == "Countess"

    response = api.call("PUT", "/api/auth/profile", token=token, json={"new_password": "another secret pw"})
    error = assert_error(response, 422)
    assert "current_password" in error["details"]["fields"]["json"]
    assert_error(api.call("PUT", "/api/auth/profile", token=token,
                          json={"current_password": "wrong password!", "new_password": "another secret pw"}),
                 403, "wrong_password")
    assert_error(api.call("PUT", "/api/auth/profile", token=token, json={}), 422)
    assert_error(api.call("PUT", "/api/auth/profile", token=token, json={"email": "x@example.com"}), 422)

    ok = api.call("PUT", "/api/auth/profile", token=token,
                  json={"current_password": PASSWORD, "new_password": "another secret pw"})
    assert ok.status_code == 200
    old = {"email": "ada@example.com", "password": PASSWORD}
    assert api.call("POST", "/api/auth/login", json=old).status_code == 401
    assert api.call("POST", "/api/auth/login",
                    json={"email": "ada@example.com", "password": "another secret pw"}).status_code == 200


def test_delete_account_cascades_to_all_its_data(app, api):
    from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse, User

    ada = api.register()
    bob = api.register(email="bob@example.com")
    classes = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    probabilities = dict.fromkeys(classes, 0.125)
    for tokens in (ada, bob):
        user = User.objects.get(id=tokens["user"]["id"])
        session = EmotionSession(owner=user).save()
        reading = EmotionReading(owner=user, session=session, source="manual", probabilities=probabilities,
                                 dominant="neutral", confidence=0.125, valence=0, arousal=0, intensity=0).save()
        EnvironmentResponse(owner=user, session=session, reading=reading).save()
        AnalysisJob(owner=user, session=session).save()

    refreshed = api.call("POST", "/api/auth/refresh", token=ada["refresh_token"]).get_json()["access_token"]
    assert_error(api.call("DELETE", "/api/auth/profile", token=refreshed), 401, "fresh_token_required")

    assert api.call("DELETE", "/api/auth/profile", token=ada["access_token"]).status_code == 204
    assert User.objects(email="ada@example.com").count() == 0
    for model in (EmotionSession, EmotionReading, EnvironmentResponse, AnalysisJob):
        assert model.objects.count() == 1, model
        assert str(model.objects.first().owner.id) == bob["user"]["id"]
    assert_error(api.call("GET", "/api/auth/profile", token=refreshed), 401, "user_not_found")


def test_login_failures_are_limited_per_account(api):
    api.register()
    wrong = {"email": "ada@example.com", "password": "wrong one!"}
    statuses = [api.call("POST", "/api/auth/login", json=wrong).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # The address that failed waits, even with the right password: it is the one guessing.
    response = api.call("POST", "/api/auth/login", json={"email": "Ada@example.com", "password": PASSWORD})
    error = assert_error(response, 429, "rate_limited")
    assert error["message"] and int(response.headers["Retry-After"]) >= 1
    # Another account from the same address is not blocked by that limit.
    bob = {"email": "bob@example.com", "password": PASSWORD}
    assert api.call("POST", "/api/auth/login", json=bob).status_code == 401


def test_a_guesser_cannot_lock_the_owner_out(api):
    """The review's finding: 5 wrong passwords from one address made the owner's correct
    password fail with 429 from another. The owner's address has not failed: it gets in."""
    api.register()
    guesser, owner, other = ({"REMOTE_ADDR": f"198.51.100.{n}"} for n in (1, 2, 3))
    wrong = {"email": "ada@example.com", "password": "wrong one!"}
    for _ in range(5):
        assert api.call("POST", "/api/auth/login", json=wrong, environ_base=guesser).status_code == 401
    assert api.call("POST", "/api/auth/login", json=wrong, environ_base=guesser).status_code == 429
    right = {"email": "ada@example.com", "password": PASSWORD}
    assert api.call("POST", "/api/auth/login", json=right, environ_base=owner).status_code == 200
    # A second guessing address gets one guess at the account under attack, then waits too.
    assert api.call("POST", "/api/auth/login", json=wrong, environ_base=other).status_code == 401
    assert api.call("POST", "/api/auth/login", json=right, environ_base=other).status_code == 429
    assert api.call("POST", "/api/auth/login", json=right, environ_base=owner).status_code == 200


def test_auth_is_rate_limited_per_ip(api):
    statuses = [api.call("POST", "/api/auth/login", json={"email": f"u{i}@example.com", "password": PASSWORD})
                .status_code for i in range(21)]
    assert statuses == [401] * 20 + [429]
    response = api.call("POST", "/api/auth/register", json={"email": "new@example.com", "password": PASSWORD})
    assert_error(response, 429)
    assert "Retry-After" in response.headers


def test_create_admin_command(app, api):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create-admin", "--email", "Root@Example.com",
                                 "--password", "admin password 1"])
    assert result.exit_code == 0, result.output
    credentials = {"email": "root@example.com", "password": "admin password 1"}
    body = api.call("POST", "/api/auth/login", json=credentials).get_json()
    assert body["user"]["role"] == "admin"
    short = runner.invoke(args=["users", "create-admin", "--email", "x@example.com", "--password", "short"])
    assert short.exit_code != 0 and "password" in short.output


def _pair(api, password=PASSWORD):
    body = api.call("POST", "/api/auth/login", json={"email": "ada@example.com", "password": password}).get_json()
    return body["access_token"], body["refresh_token"]


def test_password_change_revokes_every_earlier_token_but_gives_the_caller_new_ones(api):
    api.register()
    phone, phone_refresh = _pair(api)
    laptop, laptop_refresh = _pair(api)
    changed = api.call("PUT", "/api/auth/profile", token=laptop,
                       json={"current_password": PASSWORD, "new_password": "another secret pw"})
    assert changed.status_code == 200
    body = changed.get_json()
    for token in (phone, laptop):
        assert_error(api.call("GET", "/api/auth/profile", token=token), 401, "token_revoked")
    for token in (phone_refresh, laptop_refresh):
        assert_error(api.call("POST", "/api/auth/refresh", token=token), 401, "token_revoked")
    assert api.call("GET", "/api/auth/profile", token=body["access_token"]).status_code == 200
    assert api.call("POST", "/api/auth/refresh", token=body["refresh_token"]).status_code == 200
    # Other profile changes neither revoke tokens nor hand out new ones.
    renamed = api.call("PUT", "/api/auth/profile", token=body["access_token"], json={"display_name": "Ada L."})
    assert "access_token" not in renamed.get_json()
    assert api.call("GET", "/api/auth/profile", token=body["access_token"]).status_code == 200


def test_logout_all_revokes_every_token_of_the_account_only(app, api):
    api.register()
    bob = api.register(email="bob@example.com")["access_token"]
    phone, phone_refresh = _pair(api)
    laptop, _ = _pair(api)
    assert api.call("POST", "/api/auth/logout-all", token=laptop).status_code == 204
    for token in (phone, laptop):
        assert_error(api.call("GET", "/api/auth/profile", token=token), 401, "token_revoked")
    assert_error(api.call("POST", "/api/auth/refresh", token=phone_refresh), 401, "token_revoked")
    assert api.call("GET", "/api/auth/profile", token=bob).status_code == 200
    # The revocation outlives the cache: it is kept with the user in MongoDB too.
    app.extensions["redis"].delete(*app.extensions["redis"].keys("jwt:version:*"))
    assert_error(api.call("GET", "/api/auth/profile", token=phone), 401, "token_revoked")
    fresh, _ = _pair(api)
    assert api.call("GET", "/api/auth/profile", token=fresh).status_code == 200


def _run_mail_worker(app):
    from rq import Queue, SimpleWorker

    with app.app_context():
        SimpleWorker([Queue("mail", connection=app.extensions["redis"])],
                     connection=app.extensions["redis"]).work(burst=True)


def test_password_reset_by_email_is_single_use_and_does_not_tell_who_exists(app, api, tmp_path):
    import re

    app.config["MAIL_SINK_DIR"] = str(tmp_path)
    api.register()
    old, _ = _pair(api)
    known = api.call("POST", "/api/auth/password-reset", json={"email": "ADA@example.com"})
    unknown = api.call("POST", "/api/auth/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    assert "30 minutes" in known.get_json()["message"]
    _run_mail_worker(app)
    mails = list(tmp_path.glob("*.eml"))
    assert len(mails) == 1, "one message, to the address that has an account"
    text = mails[0].read_text()
    assert "To: ada@example.com" in text and "Subject: Reset your Mood Mirror password" in text
    token = re.search(r"/reset-password#token=([A-Za-z0-9_\-.]+)", text.replace("=\n", "")).group(1)

    assert_error(api.call("POST", "/api/auth/password-reset/confirm",
                          json={"token": token, "new_password": "short"}), 422)
    assert api.call("POST", "/api/auth/password-reset/confirm",
                    json={"token": token, "new_password": "a brand new secret"}).status_code == 204
    old_password = {"email": "ada@example.com", "password": PASSWORD}
    assert api.call("POST", "/api/auth/login", json=old_password).status_code == 401
    assert _pair(api, "a brand new secret")[0]
    assert_error(api.call("GET", "/api/auth/profile", token=old), 401, "token_revoked")
    # Used once, it is dead; a forged or expired one is refused as well.
    assert_error(api.call("POST", "/api/auth/password-reset/confirm",
                          json={"token": token, "new_password": "yet another secret"}), 400, "reset_link_used")
    assert_error(api.call("POST", "/api/auth/password-reset/confirm",
                          json={"token": token[:-3] + "abc", "new_password": "yet another secret"}),
                 400, "reset_link_invalid")
    api.call("POST", "/api/auth/password-reset", json={"email": "ada@example.com"})
    _run_mail_worker(app)
    newest = max(tmp_path.glob("*.eml")).read_text().replace("=\n", "")
    second = re.search(r"/reset-password#token=([A-Za-z0-9_\-.]+)", newest).group(1)
    app.config["PASSWORD_RESET_SECONDS"] = -1
    try:
        assert_error(api.call("POST", "/api/auth/password-reset/confirm",
                              json={"token": second, "new_password": "yet another secret"}), 400, "reset_link_expired")
    finally:
        app.config["PASSWORD_RESET_SECONDS"] = 30 * 60


def test_a_rate_limit_answer_says_what_happened_and_when_to_retry(api):
    import re

    # A password reset for one address: 5 a minute (RATELIMIT_AUTH_ACCOUNT), then Flask-Limiter's 429.
    for _ in range(6):
        response = api.call("POST", "/api/auth/password-reset", json={"email": "nobody@example.com"})
    error = assert_error(response, 429, "rate_limited")
    assert re.fullmatch(r"Too many requests: the limit is 5 per minute\. Try again in \d+ seconds?", error["message"])
    assert 1 <= error["details"]["retry_after"] <= 60
    assert response.headers["Retry-After"] == str(error["details"]["retry_after"])
    # Failed sign-ins (the sign-in guard's own 429) say when, too.
    wrong = {"email": "nobody@example.com", "password": "wrong one!"}
    for _ in range(6):
        response = api.call("POST", "/api/auth/login", json=wrong)
    error = assert_error(response, 429, "rate_limited")
    assert re.fullmatch(r"Too many failed sign-ins to this account from this address\. Try again in \d+ seconds?",
                        error["message"])
