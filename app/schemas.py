"""Shared marshmallow pieces: strict base schema, pagination arguments."""
import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser


class StrictSchema(ma.Schema):
    """Unknown fields are an error, so a typo or an injected key never passes silently."""

    class Meta:
        unknown = ma.RAISE


class PageArgsSchema(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


class _SchemaDecidesParser(FlaskParser):
    """Let each schema's Meta.unknown decide, for query strings too (webargs would EXCLUDE)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {}


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _SchemaDecidesParser()
