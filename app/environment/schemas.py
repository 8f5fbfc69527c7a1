"""Schemas of environment responses: the output (REST and the `environment` Socket.IO event)
and the arguments of /api/environment."""
import marshmallow as ma

from app.api.schemas import PageArgsSchema, StrictSchema
from app.models.base import ref_id


class EnvironmentResponseSchema(ma.Schema):
    id = ma.fields.String()
    user_id = ma.fields.Function(lambda r: ref_id(r, "owner"))
    session_id = ma.fields.Function(lambda r: ref_id(r, "session"))
    reading_id = ma.fields.Function(lambda r: ref_id(r, "reading"))
    created_at = ma.fields.AwareDateTime()
    state = ma.fields.Dict(metadata={"description": "The smoothed emotional state the response follows"})
    lighting = ma.fields.Dict(metadata={
        "description": "hue, saturation, rgb, hex, brightness, color_temperature_k, cie_xy, transition_ms"})
    audio = ma.fields.Dict(metadata={
        "description": "base_frequency_hz, root_note, mode, scale_hz, tempo_bpm, waveform, volume"})
    visual = ma.fields.Dict(metadata={"description": "type, particle_count, speed, palette"})
    smart_home = ma.fields.Dict(metadata={
        "description": "temperature_c, humidity_pct, ventilation, co2_limit_ppm, advice"})


def payload(son):
    """What EnvironmentResponseSchema dumps of a response, from its stored document (a dict): the
    workers emit a response without building its MongoEngine object (tests/test_payloads.py checks
    that both say the same)."""
    reference = {name: None if son.get(name) is None else str(son[name]) for name in ("owner", "session", "reading")}
    return {"id": str(son["_id"]), "user_id": reference["owner"], "session_id": reference["session"],
            "reading_id": reference["reading"], "created_at": son["created_at"].isoformat(),
            **{name: son[name] for name in ("state", "lighting", "audio", "visual", "smart_home")}}


class EnvironmentListArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class ForSessionArgsSchema(PageArgsSchema):
    session_id = ma.fields.String(required=True, validate=ma.validate.Length(equal=24))


class LatestArgsSchema(StrictSchema):
    session_id = ma.fields.String(required=True, validate=ma.validate.Length(equal=24))
