"""The one writer of readings. Every reading is stored and deleted here, whatever its source
(live windows, uploads, readings posted to the API, demo data), so that storage behaves the
same for all and what is kept from the readings follows every insert and every delete, in one
Redis round trip: the running totals of recent readings (app/readings/rollups.py), which the
collective mood is computed from; each user's buckets (app/readings/buckets.py), which the
trends and the distribution are; each session's series (app/readings/series.py), which its
analytics and insights are computed from.

They are derived only from readings actually inserted (a window key already stored, from a
retried job, adds nothing) and from readings actually deleted, so they stay exact.
`rebuild_rollups` recomputes the buckets and drops the series (`flask db rebuild-rollups`).
"""
from datetime import UTC, datetime, timedelta

from flask import current_app
from pymongo.errors import BulkWriteError

from app.models import SILENCE, EmotionReading, User
from app.models.base import utcnow
from app.readings import buckets, rollups, series

DUPLICATE_KEY = 11000
# Deletions by id go in batches this size (the embedded MongoDB-wire server is slow on a large $in).
DELETE_BATCH = 100
ROLLUP_FIELDS = ("owner", *series.FIELDS)
# Set by rebuild_rollups: the buckets in this Redis started from all the readings.
BUILT_KEY = "rollup:built"


def _reading(owner, session, prediction, source, fields):
    silence = bool(prediction.get("silence"))
    return EmotionReading(
        owner=owner,
        session=session,
        source=source,
        silence=silence,
        probabilities=None if silence else prediction["probabilities"],
        dominant=SILENCE if silence else prediction["dominant"],
        confidence=prediction.get("confidence"),
        uncertain=prediction.get("uncertain"),
        valence=prediction.get("valence"),
        arousal=prediction.get("arousal"),
        intensity=prediction.get("intensity"),
        **fields,
    )


def _follow(documents, sign):
    """Add stored (sign=-1: remove deleted) readings to everything kept from them."""
    if not documents:
        return
    pipe = current_app.extensions["redis"].pipeline(transaction=False)
    rollups.tally(pipe, documents, sign)
    buckets.apply(pipe, documents, sign)
    if sign > 0:
        series.append(pipe, documents)
    else:
        series.invalidate(pipe, {str(doc["session"]) for doc in documents if doc.get("session") is not None})
    pipe.execute()


def record_readings(items):
    """Save readings in one unordered bulk insert; items are (owner, session, prediction,
    source, fields), a prediction being a reading of ml.inference (the model's output, or
    `reading(probabilities)` for probabilities from elsewhere; {"silence": True} for a silent
    window). Returns the stored readings in order. A window_key
    already stored (a retried job) is not written again: the stored reading is returned in its
    place."""
    readings = [_reading(*item) for item in items]
    for reading in readings:
        reading.validate()
    documents = [reading.to_mongo().to_dict() for reading in readings]
    try:
        result = EmotionReading._get_collection().insert_many(documents, ordered=False)
        ids = result.inserted_ids
    except BulkWriteError as error:
        if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise
        duplicates = {e["index"] for e in error.details["writeErrors"]}
        stored = {r.window_key: r for r in EmotionReading.objects(
            window_key__in=[readings[i].window_key for i in duplicates])}
        ids = [None if i in duplicates else doc["_id"] for i, doc in enumerate(documents)]
        readings = [stored[r.window_key] if i in duplicates else r for i, r in enumerate(readings)]
    for reading, new_id in zip(readings, ids):
        if new_id is not None:
            reading.id = new_id
    _follow([doc for doc, new_id in zip(documents, ids) if new_id is not None], 1)
    return readings


def record_reading(owner, session, prediction, *, source, **fields):
    """Save one reading (see record_readings)."""
    return record_readings([(owner, session, prediction, source, fields)])[0]


def delete_readings(queryset):
    """Delete the readings `queryset` matches, a batch at a time (retention may delete millions),
    taking each batch out of everything kept from them; returns how many were deleted. Two
    deletions of the same readings at once could take a batch out twice (`flask db
    rebuild-rollups` repairs that)."""
    deleted = 0
    while documents := list(queryset.only(*ROLLUP_FIELDS).limit(DELETE_BATCH).as_pymongo()):
        EmotionReading.objects(id__in=[doc["_id"] for doc in documents]).delete()
        _follow(documents, -1)
        deleted += len(documents)
    return deleted


def delete_owner_readings(owner, session_ids):
    """Delete every reading of an account being deleted, with all its buckets and the series of
    its sessions (`session_ids`), without reading them one by one; returns how many were deleted."""
    recent = list(rollups.recent(EmotionReading.objects(owner=owner)).only(*ROLLUP_FIELDS).as_pymongo())
    pipe = current_app.extensions["redis"].pipeline(transaction=False)
    rollups.tally(pipe, recent, -1)
    pipe.execute()
    deleted = EmotionReading.objects(owner=owner).delete()
    buckets.forget_owner(str(owner.id))
    series.forget([str(sid) for sid in session_ids])
    return deleted


def _all_readings(fields):
    """Every reading, a user and a day at a time: short queries on the (owner, timestamp) index,
    where one cursor over the collection kept the embedded MongoDB-wire server busy for longer
    than the driver waits for it."""
    collection = EmotionReading._get_collection()
    for owner in User.objects.scalar("id"):
        first = collection.find_one({"owner": owner}, {"timestamp": 1}, sort=[("timestamp", 1)])
        if first is None:
            continue
        last = collection.find_one({"owner": owner}, {"timestamp": 1}, sort=[("timestamp", -1)])
        day = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=buckets.epoch(first["timestamp"]) // 86400)
        while day <= last["timestamp"]:
            query = {"owner": owner, "timestamp": {"$gte": day, "$lt": day + timedelta(days=1)}}
            yield from collection.find(query, {name: 1 for name in fields})
            day += timedelta(days=1)


def rebuild_rollups(progress=None):
    """Recompute every user's buckets from the readings and drop every session's series (each is
    rebuilt from the readings on first use); returns how many readings were read. `progress`,
    if given, is called with the number read so far every 10,000."""
    buckets.forget_all()
    series.forget_all()
    minutes, count = {}, 0
    for doc in _all_readings(("owner", "timestamp", "silence", "dominant", "probabilities", *buckets.FIELDS)):
        owner = str(doc["owner"])
        buckets.add(minutes.setdefault((owner, buckets.floor(buckets.epoch(doc["timestamp"]), 60)),
                                       buckets.empty()), doc)
        count += 1
        if progress and count % 10000 == 0:
            progress(count)
    buckets.write_minutes(minutes)
    current_app.extensions["redis"].set(BUILT_KEY, utcnow().isoformat())
    return count


def rollups_built():
    """Whether the buckets were built in this Redis (a Redis lost or emptied since holds none)."""
    return bool(current_app.extensions["redis"].exists(BUILT_KEY))
