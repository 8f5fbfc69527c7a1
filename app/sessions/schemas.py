import marshmallow as ma

from app.api.schemas import PageArgsSchema, StrictSchema, plain_text
from app.models.base import ref_id
from app.models.session import SOURCES


class SessionCreateSchema(StrictSchema):
    name = ma.fields.String(load_default="", validate=[ma.validate.Length(max=120), plain_text])
    source = ma.fields.String(load_default="manual", validate=ma.validate.OneOf(SOURCES))


class SessionSchema(ma.Schema):
    id = ma.fields.String()
    user_id = ma.fields.Function(lambda s: ref_id(s, "owner"))
    name = ma.fields.String()
    source = ma.fields.String()
    status = ma.fields.String()
    started_at = ma.fields.AwareDateTime()
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    audio_format = ma.fields.Dict()


class SessionListArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(("active", "ended")))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class MomentSchema(ma.Schema):
    value = ma.fields.Float(allow_none=True)
    timestamp = ma.fields.AwareDateTime(allow_none=True)


class AxisSchema(ma.Schema):
    mean = ma.fields.Float(allow_none=True)
    peak = ma.fields.Nested(MomentSchema, allow_none=True)
    low = ma.fields.Nested(MomentSchema, allow_none=True)


class TimelinePointSchema(ma.Schema):
    timestamp = ma.fields.AwareDateTime()
    count = ma.fields.Integer()
    dominant = ma.fields.String(allow_none=True)
    valence = ma.fields.Float(allow_none=True)
    arousal = ma.fields.Float(allow_none=True)
    intensity = ma.fields.Float(allow_none=True)


class AnalyticsSchema(ma.Schema):
    session_id = ma.fields.String()
    duration_seconds = ma.fields.Float()
    reading_count = ma.fields.Integer()
    silent_windows = ma.fields.Integer()
    distribution = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    dominant_emotion = ma.fields.String(allow_none=True)
    valence = ma.fields.Nested(AxisSchema)
    arousal = ma.fields.Nested(AxisSchema)
    mean_intensity = ma.fields.Float(allow_none=True)
    timeline = ma.fields.List(ma.fields.Nested(TimelinePointSchema))


class ExtremeSchema(ma.Schema):
    timestamp = ma.fields.AwareDateTime()
    dominant = ma.fields.String(allow_none=True)
    valence = ma.fields.Float()
    arousal = ma.fields.Float()


class ThirdSchema(ma.Schema):
    count = ma.fields.Integer()
    valence = ma.fields.Float(allow_none=True)
    arousal = ma.fields.Float(allow_none=True)
    dominant = ma.fields.String(allow_none=True)


class ProgressionSchema(ma.Schema):
    first_third = ma.fields.Nested(ThirdSchema)
    last_third = ma.fields.Nested(ThirdSchema)
    valence_change = ma.fields.Float(allow_none=True)
    arousal_change = ma.fields.Float(allow_none=True)
    valence_direction = ma.fields.String(allow_none=True)
    arousal_direction = ma.fields.String(allow_none=True)


class TransitionSchema(ma.Schema):
    from_ = ma.fields.String(data_key="from", attribute="from")
    to = ma.fields.String()
    count = ma.fields.Integer()


class InsightsSchema(ma.Schema):
    session_id = ma.fields.String()
    reading_count = ma.fields.Integer()
    volatility = ma.fields.Float(allow_none=True)
    volatility_level = ma.fields.String(allow_none=True)
    stability = ma.fields.Float(allow_none=True)
    progression = ma.fields.Nested(ProgressionSchema)
    peaks = ma.fields.List(ma.fields.Nested(ExtremeSchema))
    lows = ma.fields.List(ma.fields.Nested(ExtremeSchema))
    transitions = ma.fields.List(ma.fields.Nested(TransitionSchema))
    transition_count = ma.fields.Integer()
    summary = ma.fields.String()
