import mongoengine as me

from app.models.base import utcnow

SOURCES = ("stream", "upload", "manual")


class EmotionSession(me.Document):
    owner = me.ReferenceField("User", required=True)
    name = me.StringField(max_length=120, default="")
    source = me.StringField(choices=SOURCES, default="stream")
    status = me.StringField(choices=("active", "ended"), default="active")
    started_at = me.DateTimeField(default=utcnow)
    ended_at = me.DateTimeField()
    # The PCM format a live stream declared (encoding, sample_rate, channels).
    audio_format = me.DictField()

    meta = {
        "collection": "sessions",
        "indexes": [("owner", "-started_at"), ("status", "-started_at")],
    }
