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
from app.models.base import check_son, utcnow
from app.models.reading import check_reading
from app.readings import buckets, rollups, series

DUPLICATE_KEY = 11000
# Deletions by id go in batches this size (the embedded MongoDB-wire server is slow on a large $in).
DELETE_BATCH = 100
ROLLUP_FIELDS = ("owner", *series.FIELDS)
# Set by rebuild_rollups: the buckets in this Redis started from all the readings, in the format
# that this key's name gives (app/readings/buckets.py), so that a Redis holding buckets of an
# earlier format is rebuilt by `flask db rebuild-rollups --if-missing` (the release phase).
BUILT_KEY = "rollup:built:packed"


def _id(reference):
    """A reference given as a document or as its id (None stays None)."""
    return getattr(reference, "id", reference)


def _document(owner, session, prediction, source, fields):
    """A reading as stored (what EmotionReading.to_mongo would write), checked as its validate()
    would check it."""
    silence = bool(prediction.get("silence"))
    now = utcnow()
    document = {
        "owner": _id(owner), "session": _id(session), "source": source, "timestamp": now, "silence": silence,
        "probabilities": None if silence else prediction["probabilities"],
        "dominant": SILENCE if silence else prediction["dominant"],
        **{name: prediction.get(name) for name in ("confidence", "uncertain", "valence", "arousal", "intensity")},
        "created_at": now, **fields,
    }
    document = check_son(EmotionReading, {name: value for name, value in document.items() if value is not None})
    check_reading(silence, document["dominant"], document.get("probabilities"))
    return document


def _follow(documents, sign, pipe=None):
    """Add stored (sign=-1: remove deleted) readings to everything kept from them; on `pipe`
    if given (the caller executes it), else in a round trip of its own."""
    if not documents:
        return
    own = pipe is None
    if own:
        pipe = current_app.extensions["redis"].pipeline(transaction=False)
    rollups.tally(pipe, documents, sign)
    buckets.apply(pipe, documents, sign)
    if sign > 0:
        series.append(pipe, documents)
    else:
        series.invalidate(pipe, {str(doc["session"]) for doc in documents if doc.get("session") is not None})
    if own:
        pipe.execute()


def store_readings(items, pipe=None):
    """Save readings in one unordered bulk insert of raw documents; items are (owner, session,
    prediction, source, fields), owner and session documents or ids (session None for none), a
    prediction being a reading of ml.inference (the model's output, or `reading(probabilities)`
    for probabilities from elsewhere; {"silence": True} for a silent window). Returns the stored
    documents (with their `_id`) in order. A window_key already stored (a retried job) is not
    written again: the stored document is returned in its place, and adds nothing to the
    rollups. Given a Redis pipeline, the rollups' updates are queued on it for the caller to
    execute (a round trip fewer)."""
    documents = [_document(*item) for item in items]
    collection = EmotionReading._get_collection()
    try:
        collection.insert_many(documents, ordered=False)  # sets each document's _id
        new = documents
    except BulkWriteError as error:
        if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise
        duplicates = {e["index"] for e in error.details["writeErrors"]}
        stored = {doc["window_key"]: doc for doc in collection.find(
            {"window_key": {"$in": [documents[i]["window_key"] for i in duplicates]}})}
        new = [doc for i, doc in enumerate(documents) if i not in duplicates]
        documents = [stored[doc["window_key"]] if i in duplicates else doc for i, doc in enumerate(documents)]
    _follow(new, 1, pipe)
    return documents


def record_readings(items):
    """store_readings, returning EmotionReading documents."""
    return [EmotionReading._from_son(doc) for doc in store_readings(items)]


def store_reading(owner, session, prediction, *, source, **fields):
    """Save one reading (see store_readings); returns its stored document."""
    return store_readings([(owner, session, prediction, source, fields)])[0]


def add_bulk_loaded(documents):
    """Add readings inserted straight into MongoDB, each once (a bulk load: bench/api.py), to
    everything kept from them, as record_readings adds its own: loading a million readings
    builds their rollups on the way, with no rebuild reading them back."""
    _follow(documents, 1)


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
