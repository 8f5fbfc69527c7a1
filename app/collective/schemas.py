"""Schemas of the collective mood: a snapshot (REST and the `collective` Socket.IO event), its
history and insights, and their arguments."""
import marshmallow as ma

from app.api.schemas import StrictSchema


class CollectiveSchema(ma.Schema):
    id = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    window_start = ma.fields.AwareDateTime()
    window_end = ma.fields.AwareDateTime()
    active_users = ma.fields.Integer()
    active_sessions = ma.fields.Integer()
    reading_count = ma.fields.Integer()
    hidden = ma.fields.Boolean(metadata={"description": "Breakdown hidden: fewer than COLLECTIVE_MIN_USERS users"})
    distribution = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    dominant = ma.fields.String(allow_none=True)
    mean_valence = ma.fields.Float(allow_none=True)
    mean_arousal = ma.fields.Float(allow_none=True)
    mean_intensity = ma.fields.Float(allow_none=True)
    trend = ma.fields.Dict(allow_none=True)


class HoursArgsSchema(StrictSchema):
    hours = ma.fields.Float(load_default=24, validate=ma.validate.Range(min=0.01, max=24 * 31))


class HistorySchema(ma.Schema):
    hours = ma.fields.Float()
    snapshots = ma.fields.List(ma.fields.Nested(CollectiveSchema))


class CollectiveInsightsSchema(ma.Schema):
    hours = ma.fields.Float()
    snapshot_count = ma.fields.Integer()
    visible_snapshot_count = ma.fields.Integer()
    mean_valence = ma.fields.Float(allow_none=True)
    mean_arousal = ma.fields.Float(allow_none=True)
    mean_active_users = ma.fields.Float(allow_none=True)
    peaks = ma.fields.Dict()
    mood_swings = ma.fields.List(ma.fields.Dict())
    busiest_hours = ma.fields.List(ma.fields.Dict())
