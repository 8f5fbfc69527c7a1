import marshmallow as ma

from app.api.schemas import AwareDateTime, StrictSchema
from app.export.formats import FORMATS
from app.models import SILENCE
from app.models.session import SOURCES
from app.readings.schemas import ReadingSchema
from ml.params import CLASSES


class ExportArgsSchema(StrictSchema):
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(tuple(FORMATS)))
    since = AwareDateTime(metadata={"description": "Readings at or after this time"})
    until = AwareDateTime(metadata={"description": "Readings before this time"})
    session_id = ma.fields.String(validate=ma.validate.Length(equal=24))
    source = ma.fields.String(validate=ma.validate.OneOf(SOURCES))
    dominant = ma.fields.String(validate=ma.validate.OneOf((*CLASSES, SILENCE)))
    user_id = ma.fields.String(validate=ma.validate.Length(equal=24), metadata={"description": "Admins only"})


class ExportedReadingSchema(ReadingSchema):
    session_name = ma.fields.String(
        metadata={"description": "The name of the reading's session (an upload's: its file name); empty without one"})
