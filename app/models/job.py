import mongoengine as me

from app.models.base import utcnow

STATUSES = ("queued", "started", "finished", "failed")


class AnalysisJob(me.Document):
    owner = me.ReferenceField("User", required=True)
    session = me.ReferenceField("EmotionSession")
    status = me.StringField(choices=STATUSES, default="queued")
    progress = me.FloatField(min_value=0, max_value=1, default=0)
    filename = me.StringField(max_length=255, default="")
    content_type = me.StringField(max_length=127, default="")
    size_bytes = me.IntField(min_value=0)
    duration_s = me.FloatField(min_value=0)
    attempts = me.IntField(min_value=0, default=0)
    error = me.DictField()
    result = me.DictField()
    created_at = me.DateTimeField(default=utcnow)
    finished_at = me.DateTimeField()

    meta = {"collection": "analysis_jobs", "indexes": [("owner", "-created_at")]}
