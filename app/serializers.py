"""Output schemas shared by the REST API and the Socket.IO events, so both say the same."""
import marshmallow as ma

from app.models import SILENCE
from app.models.base import ref_id


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
    valence = ma.fields.Float(allow_none=True)
    arousal = ma.fields.Float(allow_none=True)
    intensity = ma.fields.Float(allow_none=True)
    model_version = ma.fields.String(allow_none=True)



class EnvironmentResponseSchema(ma.Schema):
    id = ma.fields.String()
    user_id = ma.fields.Function(lambda r: ref_id(r, "owner"))
    session_id = ma.fields.Function(lambda r: ref_id(r, "session"))
    reading_id = ma.fields.Function(lambda r: ref_id(r, "reading"))
    created_at = ma.fields.AwareDateTime()
    state = ma.fields.Dict(metadata={"description": "The smoothed emotional state the response follows"})
    lighting = ma.fields.Dict(metadata={"description": "hue, saturation, rgb, hex, brightness, color_temperature_k, cie_xy, transition_ms"})
    audio = ma.fields.Dict(metadata={"description": "base_frequency_hz, root_note, mode, scale_hz, tempo_bpm, waveform, volume"})
    visual = ma.fields.Dict(metadata={"description": "type, particle_count, speed, palette"})
    smart_home = ma.fields.Dict(metadata={"description": "temperature_c, humidity_pct, ventilation, co2_limit_ppm, advice"})


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
