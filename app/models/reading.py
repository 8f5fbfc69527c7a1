import math

import mongoengine as me

from app.models.base import utcnow
from app.models.session import SOURCES
from ml.params import CLASSES

SILENCE = "silence"
SUM_TOLERANCE = 1e-3


class EmotionReading(me.Document):
    owner = me.ReferenceField("User", required=True)
    session = me.ReferenceField("EmotionSession")
    source = me.StringField(choices=SOURCES, required=True)
    timestamp = me.DateTimeField(default=utcnow, required=True)
    # Seconds from the start of the stream or file; absent for manual readings.
    window_start = me.FloatField(min_value=0)
    window_end = me.FloatField(min_value=0)
    # Set for streamed and uploaded windows ("<session or job id>:<window index>"): the unique
    # index makes a retried job unable to store the same window twice.
    window_key = me.StringField()
    silence = me.BooleanField(default=False)
    probabilities = me.DictField(me.FloatField())
    dominant = me.StringField(choices=(*CLASSES, SILENCE), required=True)
    confidence = me.FloatField(min_value=0, max_value=1)
    # The confidence is below ml.params.UNCERTAIN_BELOW: a guess, not a finding (None for silence).
    uncertain = me.BooleanField(null=True)
    valence = me.FloatField(min_value=-1, max_value=1)
    arousal = me.FloatField(min_value=-1, max_value=1)
    intensity = me.FloatField(min_value=0, max_value=1)
    model_version = me.StringField(max_length=64)
    created_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "readings",
        "indexes": [
            ("owner", "-timestamp"),
            ("session", "timestamp"),
            # A prefix of the one above, so redundant on MongoDB, but the embedded MongoDB-wire
            # server's memory engine answers an equality only from a one-field index and scanned
            # every stored reading to build a session's series (0.85 s at 30,000 readings, 4.5 ms
            # with this index; docs/BENCHMARKS.md).
            "session",
            ("owner", "dominant", "-timestamp"),
            "-timestamp",
            {"fields": ["window_key"], "unique": True, "sparse": True},
        ],
    }

    def clean(self):
        check_reading(self.silence, self.dominant, self.probabilities)


def check_reading(silence, dominant, probabilities):
    """The rules between a reading's fields (each field's own are its field's): also applied to the
    raw documents that app/readings/store.py writes without building an EmotionReading."""
    if silence:
        if dominant != SILENCE:
            raise me.ValidationError("a silent window's dominant is 'silence'")
        return
    probs = probabilities or {}
    if set(probs) != set(CLASSES):
        raise me.ValidationError(f"probabilities must name exactly: {', '.join(CLASSES)}")
    if any(not math.isfinite(p) or p < 0 or p > 1 for p in probs.values()):
        raise me.ValidationError("each probability must be in [0, 1]")
    if abs(sum(probs.values()) - 1) > SUM_TOLERANCE:
        raise me.ValidationError("probabilities must sum to 1")
    if dominant == SILENCE:
        raise me.ValidationError("only a silent window has dominant 'silence'")
