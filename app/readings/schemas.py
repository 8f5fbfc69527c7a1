"""Schemas of readings: the output (shared by the REST API, the `emotion` Socket.IO event and
exports, so all say the same) and the arguments of /api/readings."""
import math

import marshmallow as ma

from app.api.schemas import AwareDateTime, PageArgsSchema, StrictSchema, plain_text
from app.models import SILENCE
from app.models.base import ref_id
from app.models.session import SOURCES
from ml.params import CLASSES, UNCERTAIN_BELOW

MAX_HOURS = 24 * 366
BUCKETS = ("minute", "5minutes", "15minutes", "hour", "day", "week")


class ReadingSchema(ma.Schema):
    id = ma.fields.String()
    user_id = ma.fields.Function(lambda r: ref_id(r, "owner"))
    session_id = ma.fields.Function(lambda r: ref_id(r, "session"))
    source = ma.fields.String()
    timestamp = ma.fields.AwareDateTime()
    window_start = ma.fields.Float(allow_none=True)
    window_end = ma.fields.Float(allow_none=True)
    silence = ma.fields.Boolean()
    probabilities = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    dominant = ma.fields.String(metadata={"description": f"One of the 8 classes, or '{SILENCE}'"})
    confidence = ma.fields.Float(allow_none=True)
    uncertain = ma.fields.Boolean(allow_none=True, metadata={
        "description": f"The confidence is below {UNCERTAIN_BELOW}: a guess rather than a finding (null for silence)"})
    valence = ma.fields.Float(allow_none=True)
    arousal = ma.fields.Float(allow_none=True)
    intensity = ma.fields.Float(allow_none=True)
    model_version = ma.fields.String(allow_none=True)


def payload(son):
    """What ReadingSchema dumps of a reading, from its stored document (a dict): the workers emit
    readings without building their MongoEngine objects (tests/test_payloads.py checks that both
    say the same)."""
    out = {"id": str(son["_id"]), "user_id": str(son["owner"]),
           "session_id": None if son.get("session") is None else str(son["session"]),
           "source": son["source"], "timestamp": son["timestamp"].isoformat()}
    out.update({name: son.get(name) for name in PAYLOAD_FIELDS})
    out["probabilities"] = out["probabilities"] or {}  # a silent reading's, as its document gives them
    return out


# The rest of what ReadingSchema dumps, as stored.
PAYLOAD_FIELDS = ("window_start", "window_end", "silence", "probabilities", "dominant", "confidence", "uncertain",
                  "valence", "arousal", "intensity", "model_version")


ProbabilitiesSchema = StrictSchema.from_dict(
    {name: ma.fields.Float(required=True, validate=ma.validate.Range(min=0, max=1), allow_nan=False)
     for name in CLASSES},
    name="Probabilities",
)


class ReadingCreateSchema(StrictSchema):
    probabilities = ma.fields.Nested(ProbabilitiesSchema, required=True)
    source = ma.fields.String(load_default="manual", validate=ma.validate.OneOf(SOURCES))
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    timestamp = AwareDateTime(metadata={"description": "When the emotion was observed (default: now)"})
    detector = ma.fields.String(validate=[ma.validate.Length(min=1, max=64), plain_text],
                                metadata={"description": "Name of the detector that produced it, e.g. a face model"})

    @ma.validates("probabilities")
    def _sums_to_one(self, value, **_kwargs):
        total = math.fsum(value.values())
        if abs(total - 1) > 1e-3:
            raise ma.ValidationError(f"Must sum to 1 (got {total:.4f}).")


class ReadingFilterSchema(PageArgsSchema):
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    since = AwareDateTime()
    until = AwareDateTime()
    dominant = ma.fields.String(validate=ma.validate.OneOf((*CLASSES, SILENCE)))
    source = ma.fields.String(validate=ma.validate.OneOf(SOURCES))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class BySessionArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(required=True, validate=ma.validate.Length(equal=24))


class RecentArgsSchema(PageArgsSchema):
    hours = ma.fields.Float(load_default=1, validate=ma.validate.Range(min=0.01, max=MAX_HOURS))


class WindowArgsSchema(StrictSchema):
    hours = ma.fields.Float(load_default=24, validate=ma.validate.Range(min=0.01, max=MAX_HOURS))
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class TrendArgsSchema(WindowArgsSchema):
    bucket = ma.fields.String(load_default="auto", validate=ma.validate.OneOf(("auto", *BUCKETS)), metadata={
        "description": "auto (the default): the coarsest bucket that gives at least 12 points over the span of "
                       "the readings in the period; minutes for a new account's few minutes of readings"})


class TrendPointSchema(ma.Schema):
    start = ma.fields.AwareDateTime()
    count = ma.fields.Integer()
    probabilities = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    valence = ma.fields.Float()
    arousal = ma.fields.Float()
    intensity = ma.fields.Float()


class TrendsSchema(ma.Schema):
    bucket = ma.fields.String(metadata={"description": "The bucket used (the one chosen, for auto)"})
    since = AwareDateTime()
    until = AwareDateTime()
    points = ma.fields.List(ma.fields.Nested(TrendPointSchema))


class DistributionSchema(ma.Schema):
    since = AwareDateTime()
    until = AwareDateTime()
    total = ma.fields.Integer()
    distribution = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(),
                                  metadata={"description": "Share of readings with each dominant emotion"})
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    mean_intensity = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(allow_none=True))
    overall_mean_intensity = ma.fields.Float(allow_none=True)
