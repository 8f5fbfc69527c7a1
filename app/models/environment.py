import mongoengine as me

from app.models.base import utcnow


class EnvironmentResponse(me.Document):
    owner = me.ReferenceField("User", required=True)
    session = me.ReferenceField("EmotionSession")
    reading = me.ReferenceField("EmotionReading")
    created_at = me.DateTimeField(default=utcnow, required=True)
    # The smoothed emotional state the response was computed from.
    state = me.DictField()
    lighting = me.DictField()
    audio = me.DictField()
    visual = me.DictField()
    smart_home = me.DictField()

    meta = {
        "collection": "environment_responses",
        "indexes": [("owner", "-created_at"), ("session", "-created_at")],
    }
