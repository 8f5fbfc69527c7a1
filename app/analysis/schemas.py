"""Schemas of /api/analyze and /api/results."""
import marshmallow as ma

from app.api.schemas import AwareDateTime, PageArgsSchema, StrictSchema
from app.models.base import ref_id


class AnalyzeArgsSchema(StrictSchema):
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24),
                                  metadata={"description": "Attach the readings to this session of yours"})


class JobAcceptedSchema(ma.Schema):
    job_id = ma.fields.String()
    status_url = ma.fields.String()


class JobSchema(ma.Schema):
    job_id = ma.fields.Function(lambda j: str(j.id))
    session_id = ma.fields.Function(lambda j: ref_id(j, "session"))
    status = ma.fields.String(metadata={"description": "queued, started, finished or failed"})
    progress = ma.fields.Float()
    filename = ma.fields.String()
    content_type = ma.fields.String()
    size_bytes = ma.fields.Integer()
    duration_s = ma.fields.Float(allow_none=True)
    attempts = ma.fields.Integer()
    error = ma.fields.Dict(metadata={"description": "code, message and the HTTP status it stands for, when failed"})
    result = ma.fields.Dict(metadata={"description": "overall emotion (mean probabilities), the share of windows per "
                                                     "emotion (distribution, top, mixed), per-window timeline and "
                                                     "environment response"})
    created_at = ma.fields.AwareDateTime()
    finished_at = ma.fields.AwareDateTime(allow_none=True)


class ResultsArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    since = AwareDateTime()
    until = AwareDateTime()
    status = ma.fields.String(validate=ma.validate.OneOf(("queued", "started", "finished", "failed")))
