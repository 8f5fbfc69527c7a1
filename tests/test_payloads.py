"""The workers store readings and environment responses as raw documents and emit them without
building MongoEngine objects (docs/BENCHMARKS.md): the raw documents must be checked as the
objects' validate() checks them, and the events must say what the schemas say of the objects."""
from datetime import UTC, datetime

import mongoengine as me
import pytest

from app.environment.schemas import EnvironmentResponseSchema
from app.environment.schemas import payload as response_payload
from app.environment.store import update_environments
from app.models import EmotionReading, EmotionSession, EnvironmentResponse, User
from app.readings.schemas import ReadingSchema
from app.readings.schemas import payload as reading_payload
from app.readings.store import store_readings
from ml.inference import reading as reading_of


def owner_and_session():
    user = User(email="payload@example.com", password_hash="x", display_name="P").save()
    return user, EmotionSession(owner=user, source="stream").save()


def stream_fields(session, index):
    return {"window_key": f"{session.id}:{index}", "window_start": float(index), "window_end": index + 3.0,
            "timestamp": datetime(2026, 12, 2, 6, 0, index, 123456, tzinfo=UTC), "model_version": "m-1"}


def test_reading_events_say_what_the_schema_says(app):
    with app.app_context():
        user, session = owner_and_session()
        spoken, silent = store_readings([
            (user.id, session.id, reading_of([0.5, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]), "stream",
             stream_fields(session, 0)),
            (user, session, {"silence": True}, "stream", stream_fields(session, 1)),
        ])
        for document in (spoken, silent):
            assert reading_payload(document) == ReadingSchema().dump(EmotionReading._from_son(document))
            stored = EmotionReading.objects.get(id=document["_id"])
            assert stored.window_key == document["window_key"] and stored.owner.id == user.id
        assert reading_payload(silent)["probabilities"] == {} and reading_payload(silent)["dominant"] == "silence"
        # A retried batch stores nothing twice and gets the stored documents back.
        again = store_readings([(user.id, session.id, {"silence": True}, "stream", stream_fields(session, 1))])
        assert again[0]["_id"] == silent["_id"] and EmotionReading.objects.count() == 2


@pytest.mark.parametrize("change", [
    {"valence": 1.5}, {"source": "carrier pigeon"}, {"model_version": "m" * 65},
    {"probabilities": {"neutral": 1.0}}, {"dominant": "silence"},
])
def test_raw_readings_are_checked_as_the_document_checks_them(app, change):
    with app.app_context():
        user, session = owner_and_session()
        prediction = reading_of([0.5, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
        fields = stream_fields(session, 0)
        source = change.pop("source", "stream")
        fields.update({k: v for k, v in change.items() if k == "model_version"})
        prediction.update({k: v for k, v in change.items() if k != "model_version"})
        with pytest.raises(me.ValidationError):
            store_readings([(user.id, session.id, prediction, source, fields)])
        with pytest.raises(me.ValidationError):  # the document class says the same
            EmotionReading(owner=user, session=session, source=source, **prediction, **fields).validate()
        assert EmotionReading.objects.count() == 0


def test_environment_events_say_what_the_schema_says(app):
    with app.app_context():
        user, session = owner_and_session()
        readings = store_readings([
            (user.id, session.id, reading_of([0.9, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01]), "stream",
             stream_fields(session, 0)),
            (user.id, session.id, {"silence": True}, "stream", stream_fields(session, 1)),
        ])
        first, silent = update_environments([(user.id, session.id, reading) for reading in readings])
        assert silent is None
        assert response_payload(first) == EnvironmentResponseSchema().dump(EnvironmentResponse._from_son(first))
        stored = EnvironmentResponse.objects.get(id=first["_id"])
        assert stored.reading.id == readings[0]["_id"] and stored.session.id == session.id
        assert stored.lighting == first["lighting"]
