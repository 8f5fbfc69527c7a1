"""Demo data for the dashboard: users, past sessions and readings whose emotions drift plausibly.

Each user has a temperament (baseline preferences over the 8 classes); within a session the
class logits follow a mean-reverting random walk around a target that itself wanders, so a
session shows slow mood changes with moment-to-moment wobble rather than independent noise.
Readings are stored by their one writer (app/readings/store.py), as the pipeline's are.
"""
from datetime import UTC, datetime, timedelta

import numpy as np

from app.auth.accounts import hash_password
from app.models import EmotionSession, User
from app.readings.store import record_readings
from ml.inference import reading
from ml.params import CLASSES, WINDOW_SECONDS

EMAIL_DOMAIN = "demo.moodmirror.example"
# Inserts go in batches of at most 100: the embedded wire server slows down on larger ones.
INSERT_BATCH = 100
READING_INTERVAL_S = 3.0
SILENCE_SHARE = 0.08
MODEL_VERSION = "demo"
SILENT = {"silence": True}


def demo_accounts(count):
    """(email, display name, password) of each demo user; the passwords are meant to be public."""
    return [(f"demo{i}@{EMAIL_DOMAIN}", f"Demo {i}", f"mood mirror demo {i}") for i in range(1, count + 1)]


def existing_demo_users():
    return User.objects(email__endswith="@" + EMAIL_DOMAIN)


def _softmax(logits):
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _session_readings(rng, owner, session, temperament, start, count):
    """`count` readings of one streamed session, one per READING_INTERVAL_S from `start`, as
    record_readings items."""
    target = temperament + rng.normal(0, 0.8, len(CLASSES))
    logits = target.copy()
    for index in range(count):
        target += rng.normal(0, 0.15, len(CLASSES))
        logits += 0.2 * (target - logits) + rng.normal(0, 0.35, len(CLASSES))
        offset = index * READING_INTERVAL_S
        fields = {"timestamp": start + timedelta(seconds=offset), "window_start": offset,
                  "window_end": offset + WINDOW_SECONDS, "window_key": f"{session.id}:{index}",
                  "model_version": MODEL_VERSION}
        if rng.random() < SILENCE_SHARE:
            yield owner, session, SILENT, "stream", fields
            continue
        yield owner, session, reading(_softmax(logits)), "stream", fields


def plan_sessions(rng, users, days, now):
    """(user, temperament, start, reading count) for one or two sessions a day per user.

    Starts lie between 1 and 20 hours before each day's mark, so day 0 stays inside the last day.
    """
    plan = []
    for user in users:
        temperament = rng.normal(0, 1.0, len(CLASSES))
        for day in range(days):
            for _ in range(rng.integers(1, 3)):
                start = now - timedelta(days=day, hours=float(rng.uniform(1, 20)))
                minutes = float(rng.uniform(5, 15))
                plan.append((user, temperament, start, int(minutes * 60 / READING_INTERVAL_S)))
    return plan


def seed(user_count, days, random_seed, progress):
    """Create the demo users, their sessions and readings; returns the accounts and counts.

    `progress` is a tqdm-like factory: progress(total=...) with .update(n) and .close().
    """
    rng = np.random.default_rng(random_seed)
    now = datetime.now(UTC)
    accounts = demo_accounts(user_count)
    users = [User(email=email, display_name=name, password_hash=hash_password(password)).save()
             for email, name, password in accounts]
    plan = plan_sessions(rng, users, days, now)
    bar = progress(total=sum(count for *_, count in plan), unit="reading")
    readings = 0
    try:
        for user, temperament, start, count in plan:
            session = EmotionSession(owner=user, name=f"Demo session {start:%a %H:%M}", source="stream",
                                     status="ended", started_at=start,
                                     ended_at=start + timedelta(seconds=count * READING_INTERVAL_S)).save()
            batch = []
            for item in _session_readings(rng, user, session, temperament, start, count):
                batch.append(item)
                if len(batch) == INSERT_BATCH:
                    readings += _insert(batch, bar)
            readings += _insert(batch, bar)
    finally:
        bar.close()
    return accounts, {"users": len(users), "sessions": len(plan), "readings": readings}


def _insert(batch, bar):
    if not batch:
        return 0
    record_readings(batch)
    bar.update(len(batch))
    inserted = len(batch)
    batch.clear()
    return inserted
