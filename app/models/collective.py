import mongoengine as me

from app.models.base import utcnow


class CollectiveEmotion(me.Document):
    created_at = me.DateTimeField(default=utcnow, required=True)
    window_start = me.DateTimeField(required=True)
    window_end = me.DateTimeField(required=True)
    active_users = me.IntField(min_value=0, default=0)
    active_sessions = me.IntField(min_value=0, default=0)
    reading_count = me.IntField(min_value=0, default=0)
    # Hidden (None) when fewer than COLLECTIVE_MIN_USERS distinct users contributed.
    distribution = me.DictField(null=True)
    dominant = me.StringField(null=True)
    mean_valence = me.FloatField(null=True)
    mean_arousal = me.FloatField(null=True)
    mean_intensity = me.FloatField(null=True)
    hidden = me.BooleanField(default=True)
    trend = me.DictField(null=True)

    meta = {"collection": "collective", "indexes": ["-created_at"]}
