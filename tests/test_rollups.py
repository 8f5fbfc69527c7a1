"""The rollups the analytics read (app/readings/buckets.py, app/readings/series.py) against a
from-scratch aggregation of the readings, after a randomised mix of streams (fast and resumed),
uploads, posted readings, retried batches, and deletions of sessions, accounts and by retention."""
import json
import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from app.auth.accounts import delete_account
from app.models import EmotionReading, EmotionSession, User
from app.models.base import ref_id
from app.readings import buckets, stats
from app.readings.store import add_bulk_loaded, rebuild_rollups, record_readings
from app.sessions.analytics import on_audio_clock, session_analytics, session_insights
from app.sessions.store import delete_session
from app.sessions.summary import SCHEMAS, TIMELINE_POINTS, session_bodies
from app.system.retention import prune
from ml.inference import reading as reading_of
from ml.params import CLASSES

RETENTION_DAYS = 5


def prediction(rng):
    if rng.random() < 0.15:
        return {"silence": True}
    return reading_of([rng.random() ** 3 for _ in CLASSES])


class Mix:
    """Writes readings the way each source does, remembering every batch to retry some."""

    def __init__(self, rng, now):
        self.rng, self.now, self.batches = rng, now, []

    def write(self, items):
        self.batches.append(items)
        record_readings(items)

    def stream(self, owner, session, start, count, first_index=0, fast=False):
        """A live stream: warm-up windows end at 1, 2, 3 s, then one per second; `fast` arrives
        all within a second, as `mood-mirror stream --fast` sends it."""
        items = []
        for k in range(count):
            index = first_index + k
            arrival = start + timedelta(seconds=(k * 0.02 if fast else k + self.rng.random() * 0.5))
            items.append((owner, session, prediction(self.rng), "stream",
                          {"window_key": f"{session.id}:{index}", "window_start": max(0.0, k - 2.0),
                           "window_end": k + 1.0, "timestamp": arrival}))
        for first in range(0, count, 7):  # drain jobs take a few windows at a time
            self.write(items[first:first + 7])

    def upload(self, owner, session, start, count, job):
        items = [(owner, session, prediction(self.rng), "upload",
                  {"window_key": f"{job}:{k}", "window_start": float(k), "window_end": k + 3.0, "timestamp": start})
                 for k in range(count)]
        self.write(items)

    def manual(self, owner, session, moments):
        self.write([(owner, session, reading_of([self.rng.random() for _ in CLASSES]), "manual", {"timestamp": t})
                    for t in moments])

    def retry_some(self, k):
        for items in self.rng.sample(self.batches, min(k, len(self.batches))):
            record_readings(items)  # every window key is stored already: nothing is counted twice


def scratch_buckets():
    """(owner, unit, start) -> totals, straight from the readings."""
    expected = defaultdict(lambda: defaultdict(float))
    for doc in EmotionReading.objects.as_pymongo():
        second = int(doc["timestamp"].replace(tzinfo=UTC).timestamp())
        for unit, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
            totals = expected[(str(doc["owner"]), unit, second - second % size)]
            if doc["silence"]:
                totals["silent"] += 1
                continue
            totals["n"] += 1
            totals[f"d:{doc['dominant']}"] += 1
            totals[f"di:{doc['dominant']}"] += doc["intensity"]
            for name in CLASSES:
                totals[f"p:{name}"] += doc["probabilities"][name]
            for name in ("valence", "arousal", "intensity", "confidence"):
                totals[f"s:{name}"] += doc[name]
                totals[f"q:{name}"] += doc[name] ** 2
    return expected


def assert_close(actual, expected, path="result"):
    if isinstance(expected, dict):
        assert set(actual) == set(expected), path
        for name in expected:
            assert_close(actual[name], expected[name], f"{path}.{name}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), path
    else:
        assert actual == expected, path


def check_buckets(app):
    expected = scratch_buckets()
    redis = app.extensions["redis"]
    stored = {}
    for name in redis.scan_iter(match="rollup:{*"):
        name = name.decode()
        if name.endswith(":minutes"):
            continue
        owner, unit, start = name[len("rollup:{"):].replace("}", "").split(":")
        stored[(owner, unit, int(start))] = buckets.unpack(redis.get(name))
    assert set(stored) == set(expected)
    for key, totals in expected.items():
        # A field whose readings were all subtracted stays, at 0.
        for field in set(stored[key]) | set(totals):
            expected_value = pytest.approx(totals.get(field, 0.0), rel=1e-9, abs=1e-9)
            assert stored[key].get(field, 0.0) == expected_value, (key, field)
    for owner in {owner for owner, _, _ in expected}:
        minutes = {int(m) for m in redis.zrange(buckets.minutes_key(owner), 0, -1)}
        assert minutes == {start for o, unit, start in expected if o == owner and unit == "minute"}


def scratch_trends(owner, since, until, bucket):
    """The aggregation pipeline the trends were computed with before the rollups."""
    unit, size = {"hour": ("hour", 1), "day": ("day", 1), "15minutes": ("minute", 15)}[bucket]
    group = {"_id": {"$dateTrunc": {"date": "$timestamp", "unit": unit, "binSize": size}}, "count": {"$sum": 1},
             "valence": {"$avg": "$valence"}, "arousal": {"$avg": "$arousal"}, "intensity": {"$avg": "$intensity"},
             **{f"p_{name}": {"$avg": f"$probabilities.{name}"} for name in CLASSES}}
    match = {"owner": owner.id, "silence": False, "timestamp": {"$gte": since, "$lt": until}}
    rows = EmotionReading._get_collection().aggregate([{"$match": match}, {"$group": group}, {"$sort": {"_id": 1}}])
    return [{"start": row["_id"].replace(tzinfo=UTC), "count": row["count"],
             "probabilities": {name: row[f"p_{name}"] for name in CLASSES},
             "valence": row["valence"], "arousal": row["arousal"], "intensity": row["intensity"]} for row in rows]


def scratch_summary(session):
    docs = [{**doc, "index": int(doc["window_key"].rpartition(":")[2]) if doc.get("window_key") else None,
             "segment": doc["window_key"].rpartition(":")[0] if doc.get("window_key") else None}
            for doc in EmotionReading.objects(session=session).as_pymongo()]
    placed, audio = on_audio_clock(docs, session.started_at)
    spoken = [r for r in placed if not r["silence"]]
    analytics = session_analytics(spoken, session.started_at, session.ended_at, max_points=TIMELINE_POINTS,
                                  audio_seconds=audio)
    analytics["silent_windows"] = len(placed) - len(spoken)
    return {"analytics": analytics, "insights": session_insights(spoken)}


def check_everything(app, now):
    check_buckets(app)
    for owner in User.objects:
        since = (now - timedelta(days=8)).replace(second=0, microsecond=0)
        until = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
        for bucket in ("hour", "day", "15minutes"):
            assert_close(stats.trends(owner, None, since, until, bucket), scratch_trends(owner, since, until, bucket))
    for session in EmotionSession.objects:
        scratch = scratch_summary(session)
        expected = {name: schema.dump({"session_id": str(session.id), **scratch[name]})
                    for name, schema in SCHEMAS.items()}
        for _ in range(2):  # computed, then the cached answer
            bodies = session_bodies(session.id, ref_id(session, "owner"), lambda: session)
            assert_close({name: json.loads(body) for name, body in bodies.items()}, expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_from_scratch_aggregation(app, seed):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with app.app_context():
        users = [User(email=f"mix{i}@example.com", password_hash="-", display_name=f"mix {i}").save()
                 for i in range(3)]
        mix, sessions = Mix(rng, now), []
        for user in users:
            for _ in range(4):
                started = now - timedelta(days=rng.uniform(0, 8), seconds=rng.randrange(3600))
                ended = rng.random() < 0.7
                source = rng.choice(("stream", "upload", "manual"))
                session = EmotionSession(owner=user, source=source, started_at=started,
                                         status="ended" if ended else "active",
                                         ended_at=started + timedelta(minutes=30) if ended else None).save()
                sessions.append(session)
                if source == "stream":
                    mix.stream(user, session, started, rng.randrange(5, 60), fast=rng.random() < 0.5)
                    if rng.random() < 0.5:  # resumed: the windows go on numbering, their audio restarts at 0
                        mix.stream(user, session, started + timedelta(minutes=5), rng.randrange(5, 30),
                                   first_index=1000)
                elif source == "upload":
                    mix.upload(user, session, started, rng.randrange(5, 40), job=f"job{session.id}")
                    if rng.random() < 0.3:
                        mix.upload(user, session, started + timedelta(minutes=2), 8, job=f"job2{session.id}")
                else:
                    mix.manual(user, session, [started + timedelta(seconds=rng.uniform(0, 900)) for _ in range(20)])
            mix.manual(user, None, [now - timedelta(hours=rng.uniform(0, 200)) for _ in range(15)])
        mix.retry_some(10)
        check_everything(app, now)

        delete_session(sessions[1])
        mix.retry_some(5)  # retried batches of the deleted session store its readings again, as new
        prune(RETENTION_DAYS)
        delete_account(users[2])
        for session in EmotionSession.objects(owner=users[0]):
            mix.manual(users[0], session, [now - timedelta(seconds=rng.uniform(0, 60))])
        check_everything(app, now)

        rebuild_rollups()
        check_everything(app, now)


def test_bulk_loaded_readings_are_added_to_the_rollups(app):
    """Readings inserted straight into MongoDB (bench/api.py's pre-load) and handed to
    add_bulk_loaded leave the same rollups as a from-scratch aggregation."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    with app.app_context():
        user = User(email="bulk@example.com", password_hash="-", display_name="bulk").save()
        started = now - timedelta(hours=3)
        session = EmotionSession(owner=user, source="stream", started_at=started, status="ended",
                                 ended_at=started + timedelta(minutes=5)).save()
        documents = []
        for k in range(150):
            p = prediction(rng)
            silent = bool(p.get("silence"))
            documents.append(EmotionReading(
                owner=user, session=session, source="stream", silence=silent,
                probabilities=None if silent else p["probabilities"], dominant="silence" if silent else p["dominant"],
                confidence=p.get("confidence"), uncertain=p.get("uncertain"), valence=p.get("valence"),
                arousal=p.get("arousal"), intensity=p.get("intensity"), window_key=f"{session.id}:{k}",
                window_start=max(0.0, k - 2.0), window_end=k + 1.0, timestamp=started + timedelta(seconds=k),
            ).to_mongo().to_dict())
        for first in range(0, len(documents), 100):
            batch = documents[first:first + 100]
            EmotionReading._get_collection().insert_many(batch)
            add_bulk_loaded(batch)
        check_everything(app, now)


def test_audio_clock_times_a_fast_stream_by_its_windows(app, api, ada):
    """49 windows sent in about a second (`stream --fast`) last 49 s of audio, not 1 s."""
    now = datetime.now(UTC)
    with app.app_context():
        user = User.objects.get(email="ada@example.com")
        session = EmotionSession(owner=user, source="stream", started_at=now - timedelta(minutes=1)).save()
        Mix(random.Random(4), now).stream(user, session, now - timedelta(seconds=50), 49, fast=True)
        spoken = EmotionReading.objects(session=session, silence=False).count()
    analytics = api.call("GET", f"/api/sessions/{session.id}/analytics", token=ada).get_json()
    assert analytics["duration_seconds"] == 49.0
    assert analytics["reading_count"] == spoken
    times = [datetime.fromisoformat(p["timestamp"]) for p in analytics["timeline"]]
    assert times == sorted(times) and (times[-1] - times[0]).total_seconds() > 40
    insights = api.call("GET", f"/api/sessions/{session.id}/insights", token=ada).get_json()
    assert " over 4" in insights["summary"]  # "... readings over 4x s": the span of the audio


def test_trends_choose_minutes_for_a_new_account(api, ada):
    from test_readings import post, probs

    now = datetime.now(UTC)
    for minutes in range(6):
        post(api, ada, probabilities=probs(happy=0.5 + minutes / 20),
             timestamp=(now - timedelta(minutes=minutes)).isoformat())
    trends = api.call("GET", "/api/readings/trends?hours=24", token=ada).get_json()
    assert trends["bucket"] == "minute" and len(trends["points"]) == 6
    assert api.call("GET", "/api/readings/trends?hours=24&bucket=hour", token=ada).get_json()["bucket"] == "hour"
    # Two days of readings over a week: hours (48 points or so, at least 12).
    for hours in range(0, 48, 2):
        post(api, ada, probabilities=probs(sad=0.6), timestamp=(now - timedelta(hours=hours, minutes=30)).isoformat())
    week = api.call("GET", "/api/readings/trends?hours=168", token=ada).get_json()
    assert week["bucket"] == "hour" and 12 <= len(week["points"]) <= 48
    assert not math.isnan(week["points"][0]["valence"])
