import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

DEMO_1 = "demo1@demo.moodmirror.example"


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def seed(runner, *args):
    result = runner.invoke(args=["seed-demo", "--users", "2", "--days", "2", *args])
    assert result.exit_code == 0, result.output
    return result


def test_seed_demo_creates_plausible_data_and_known_passwords(api, runner):
    from app.models import EmotionReading, EmotionSession, User

    result = seed(runner)
    assert f"{DEMO_1}  password: mood mirror demo 1" in result.output
    users = User.objects(email__endswith="@demo.moodmirror.example")
    sessions, readings = EmotionSession.objects.count(), EmotionReading.objects.count()
    assert users.count() == 2 and sessions >= 4  # one or two a day per user
    assert f"created 2 users, {sessions} sessions, {readings} readings" in result.output
    # The printed password signs in.
    login = api.call("POST", "/api/auth/login", json={"email": DEMO_1, "password": "mood mirror demo 1"})
    assert login.status_code == 200
    now = datetime.now(UTC)
    assert EmotionReading.objects(timestamp__gt=now).count() == 0
    assert EmotionReading.objects(timestamp__lt=now - timedelta(days=2, hours=1)).count() == 0
    silent = EmotionReading.objects(silence=True).count()
    assert 0 < silent < readings * 0.2
    # Emotions drift rather than jump: consecutive readings mostly keep their dominant class.
    session = EmotionSession.objects.first()
    dominants = [r.dominant for r in EmotionReading.objects(session=session, silence=False).order_by("timestamp")]
    kept = sum(a == b for a, b in zip(dominants, dominants[1:])) / (len(dominants) - 1)
    assert kept > 0.6
    assert len(set(dominants)) > 1


def test_seed_demo_refuses_to_seed_twice_unless_replacing(runner):
    from app.models import EmotionReading, User

    seed(runner)
    before = EmotionReading.objects.count()
    again = runner.invoke(args=["seed-demo", "--users", "2", "--days", "2"])
    assert again.exit_code != 0 and "demo users exist already" in again.output
    assert EmotionReading.objects.count() == before
    seed(runner, "--replace")
    assert User.objects.count() == 2 and EmotionReading.objects.count() == before  # same seed, same data


def test_export_command_writes_the_users_readings(runner, tmp_path):
    from app.models import EmotionReading, User

    seed(runner)
    user = User.objects.get(email=DEMO_1)
    expected = EmotionReading.objects(owner=user).count()
    target = tmp_path / "ada.csv"
    result = runner.invoke(args=["export", "--format", "csv", "--user", DEMO_1.upper(), "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == expected
    first = EmotionReading.objects(owner=user).order_by("timestamp").first()
    assert rows[0]["id"] == str(first.id) and rows[0]["model_version"] == "demo"
    # JSON to standard output: the same readings.
    printed = runner.invoke(args=["export", "--format", "json", "--user", DEMO_1])
    items = json.loads(printed.stdout)
    assert [item["id"] for item in items] == [row["id"] for row in rows]
    missing = runner.invoke(args=["export", "--format", "csv", "--user", "nobody@example.com"])
    assert missing.exit_code != 0 and "no account" in missing.output


def test_prune_deletes_what_is_past_retention(app, runner, monkeypatch):
    from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse, User
    from app.models.base import ref_id

    seed(runner)
    owner = User.objects.get(email=DEMO_1)
    long_ago = datetime.now(UTC) - timedelta(days=3)
    AnalysisJob(owner=owner, status="finished", created_at=long_ago).save()
    AnalysisJob(owner=owner, status="finished").save()
    EnvironmentResponse(owner=owner, created_at=long_ago).save()
    EnvironmentResponse(owner=owner).save()
    EmotionSession(owner=owner, status="active", started_at=long_ago).save()  # still going: kept
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 1)
    cutoff = datetime.now(UTC) - timedelta(days=1)
    old_readings = EmotionReading.objects(timestamp__lt=cutoff).count()
    old_sessions = EmotionSession.objects(status="ended", ended_at__lt=cutoff).count()
    readings, sessions = EmotionReading.objects.count(), EmotionSession.objects.count()
    assert 0 < old_readings < readings and 0 < old_sessions

    expected = (f"older than 1 days, {{}}: 1 environment responses, {old_readings} readings, 1 analysis jobs, "
                f"{old_sessions} ended sessions")
    dry = runner.invoke(args=["prune", "--dry-run"])
    assert dry.exit_code == 0 and expected.format("would delete") in dry.output
    assert EmotionReading.objects.count() == readings

    result = runner.invoke(args=["prune"])
    assert result.exit_code == 0 and expected.format("deleted") in result.output
    assert EmotionReading.objects.count() == readings - old_readings
    assert EmotionReading.objects(timestamp__lt=cutoff).count() == 0
    assert EmotionSession.objects.count() == sessions - old_sessions
    assert EmotionSession.objects(status="active").count() == 1
    assert AnalysisJob.objects.count() == EnvironmentResponse.objects.count() == 1
    # Nothing is left pointing at a deleted session.
    referenced = {ref_id(reading, "session") for reading in EmotionReading.objects.only("session")}
    assert referenced <= {str(session.id) for session in EmotionSession.objects}
