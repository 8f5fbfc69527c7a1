"""The one writer of readings. Every reading is stored and deleted here, whatever its source
(live windows, uploads, readings posted to the API, demo data), so that storage behaves the
same for all and the rollups of recent readings (app/readings/rollups.py), which the collective
mood is computed from, follow every insert and every delete."""
from pymongo.errors import BulkWriteError

from app.models import SILENCE, EmotionReading
from app.readings import rollups

DUPLICATE_KEY = 11000


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
    documents = [reading.to_mongo() for reading in readings]
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
    rollups.tally([reading for reading, new_id in zip(readings, ids) if new_id is not None])
    return readings


def record_reading(owner, session, prediction, *, source, **fields):
    """Save one reading (see record_readings)."""
    return record_readings([(owner, session, prediction, source, fields)])[0]


def delete_readings(queryset):
    """Delete the readings of `queryset`, taking them out of the rollups first;
    returns how many were deleted."""
    rollups.untally(queryset)
    return queryset.delete()
