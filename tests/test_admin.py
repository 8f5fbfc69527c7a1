import re
from urllib.parse import urlsplit

import pytest

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "admin password 1"
USER_EMAIL, USER_PASSWORD = "ada@example.com", "correct horse battery"
MODEL_PAGES = ("users", "sessions", "readings", "environment", "collective", "jobs")
ADMIN_PAGES = ("/admin/", *(f"/admin/{page}/" for page in MODEL_PAGES))
ONE_HOT_SAD = {**dict.fromkeys(("neutral", "calm", "happy", "angry", "fearful", "disgust", "surprised"), 0.0),
               "sad": 1.0}


@pytest.fixture
def admin_account(app):
    result = app.test_cli_runner().invoke(args=["users", "create-admin", "--email", ADMIN_EMAIL,
                                                "--password", ADMIN_PASSWORD])
    assert result.exit_code == 0, result.output


@pytest.fixture
def user_token(api):
    return api.register(email=USER_EMAIL, password=USER_PASSWORD)["access_token"]


def csrf_token(html):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def login(client, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, **extra):
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def assert_sent_to_login(response):
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_anonymous_is_sent_to_the_login_page(client, page):
    assert_sent_to_login(client.get(page))


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_a_bearer_token_does_not_open_the_admin(client, api, user_token, page):
    assert_sent_to_login(api.call("GET", page, token=user_token))


def test_a_non_admin_cannot_sign_in(client, user_token):
    response = login(client, USER_EMAIL, USER_PASSWORD)
    assert response.status_code == 401
    assert "not an admin account" in response.get_data(as_text=True)
    for page in ADMIN_PAGES:
        assert_sent_to_login(client.get(page))


def test_wrong_password_and_unknown_account_are_refused_alike(client, admin_account):
    wrong = login(client, password="not the password")
    unknown = login(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert_sent_to_login(client.get("/admin/users/"))


def test_admin_signs_in_and_lists_every_model(client, api, admin_account, user_token):
    api.call("POST", "/api/readings", token=user_token, json={"probabilities": ONE_HOT_SAD, "detector": "face-v1"})
    response = login(client, next="/admin/readings/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/readings/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    for page in ADMIN_PAGES:
        page_response = client.get(page)
        assert page_response.status_code == 200, page
        assert ADMIN_EMAIL in page_response.get_data(as_text=True)
    readings = client.get("/admin/readings/").get_data(as_text=True)
    assert "face-v1" in readings and "List (1)" in readings
    users = client.get("/admin/users/").get_data(as_text=True)
    assert USER_EMAIL in users and "List (2)" in users


def test_admin_lists_show_owners_by_email_and_scroll_wide_tables(client, api, admin_account, user_token):
    from app.models import User

    api.call("POST", "/api/readings", token=user_token, json={"probabilities": ONE_HOT_SAD})
    login(client)
    owner_id = str(User.objects.get(email=USER_EMAIL).id)
    readings = client.get("/admin/readings/").get_data(as_text=True)
    assert re.findall(r'class="col-owner">\s*([^<]*?)\s*<', readings) == [USER_EMAIL]
    assert owner_id not in readings
    assert "css/admin.css" in readings
    assert "overflow-x: auto" in client.get("/static/css/admin.css").get_data(as_text=True)


def test_next_never_leaves_the_admin(client, admin_account):
    response = login(client, next="https://evil.example/admin")
    assert response.headers["Location"] == "/admin/"


def test_password_hash_never_appears(client, admin_account, user_token):
    from app.models import User

    login(client)
    user = User.objects.get(email=USER_EMAIL)
    pages = ["/admin/users/", f"/admin/users/details/?id={user.id}", f"/admin/users/edit/?id={user.id}"]
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        assert client.get(page).status_code == 200, page
        assert "password_hash" not in html.lower() and "password hash" not in html.lower(), page
        assert user.password_hash not in html and user.password_hash[:29] not in html, page


def test_login_needs_its_csrf_token(client, admin_account):
    client.get("/admin/login")
    response = client.post("/admin/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    forged = client.post("/admin/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                                 "csrf_token": "1" * 40 + "##" + "a" * 40})
    assert forged.status_code == 400
    assert_sent_to_login(client.get("/admin/users/"))


def test_model_forms_need_the_csrf_token(client, admin_account, user_token):
    from app.models import User

    login(client)
    user = User.objects.get(email=USER_EMAIL)
    # An edit without the token is refused: the role stays as it was.
    client.post(f"/admin/users/edit/?id={user.id}", data={"display_name": "Mallory", "role": "admin"})
    user.reload()
    assert user.role == "user" and user.display_name != "Mallory"
    # A delete without the token leaves the account in place.
    client.post("/admin/users/delete/", data={"id": str(user.id), "url": "/admin/users/"})
    assert User.objects(email=USER_EMAIL).count() == 1
    # With the token from the edit form, the edit goes through.
    token = csrf_token(client.get(f"/admin/users/edit/?id={user.id}").get_data(as_text=True))
    client.post(f"/admin/users/edit/?id={user.id}", data={"display_name": "Ada L", "role": "user", "csrf_token": token})
    user.reload()
    assert user.display_name == "Ada L"


def test_deleting_a_user_in_the_admin_deletes_their_data(client, api, admin_account, user_token):
    from app.models import EmotionReading, EmotionSession, User

    session = api.call("POST", "/api/sessions", token=user_token, json={}).get_json()["id"]
    api.call("POST", "/api/readings", token=user_token, json={"probabilities": ONE_HOT_SAD, "session_id": session})
    login(client)
    user = User.objects.get(email=USER_EMAIL)
    token = csrf_token(client.get("/admin/users/").get_data(as_text=True))
    client.post("/admin/users/delete/", data={"id": str(user.id), "url": "/admin/users/", "csrf_token": token})
    assert User.objects(email=USER_EMAIL).count() == 0
    assert EmotionSession.objects.count() == EmotionReading.objects.count() == 0


def test_deleting_a_reading_in_the_admin_takes_it_out_of_the_collective(app, client, api, admin_account, user_token):
    from app.collective.snapshot import take_snapshot
    from app.models import EmotionReading

    api.call("POST", "/api/readings", token=user_token, json={"probabilities": ONE_HOT_SAD})
    with app.app_context():
        assert take_snapshot().reading_count == 1
    login(client)
    reading = EmotionReading.objects.get()
    token = csrf_token(client.get("/admin/readings/").get_data(as_text=True))
    client.post("/admin/readings/delete/", data={"id": str(reading.id), "url": "/admin/readings/", "csrf_token": token})
    assert EmotionReading.objects.count() == 0
    with app.app_context():
        assert take_snapshot().reading_count == 0


def test_demotion_and_password_change_end_the_admin_session(app, client, admin_account):
    from app.auth.accounts import hash_password
    from app.models import User

    login(client)
    assert client.get("/admin/users/").status_code == 200
    User.objects(email=ADMIN_EMAIL).update(set__password_hash=hash_password("another password 2"))
    assert_sent_to_login(client.get("/admin/users/"))
    login(client, password="another password 2")
    assert client.get("/admin/users/").status_code == 200
    User.objects(email=ADMIN_EMAIL).update(set__role="user")
    assert_sent_to_login(client.get("/admin/users/"))


def test_logout_needs_a_post_with_the_token(client, admin_account):
    login(client)
    assert client.get("/admin/logout").status_code == 405
    client.post("/admin/logout")  # no token: still signed in
    assert client.get("/admin/users/").status_code == 200
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    assert_sent_to_login(client.post("/admin/logout", data={"csrf_token": token}))
    assert_sent_to_login(client.get("/admin/users/"))


def test_admin_login_is_rate_limited_per_account(app, client, admin_account):
    limit = int(app.config["RATELIMIT_AUTH_ACCOUNT"].split()[0])
    statuses = [login(client, password=f"wrong {i}").status_code for i in range(limit + 1)]
    assert statuses == [401] * limit + [429]


def test_admin_pages_get_the_admin_policy(client, admin_account):
    login(client)
    policy = client.get("/admin/readings/").headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-hashes' 'sha256-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1]
    assert "frame-ancestors 'none'" in policy
    # Outside /admin the site-wide policy stays as it was: no script hashes.
    assert "script-src" not in client.get("/api/docs").headers["Content-Security-Policy"]
