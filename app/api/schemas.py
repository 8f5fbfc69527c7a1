"""Marshmallow pieces every area shares: strict base schema, pagination arguments, safe text,
times, and the arguments parser that lets each schema decide about unknown fields."""
import json
import unicodedata
from datetime import UTC

import marshmallow as ma
from webargs.flaskparser import FlaskParser

# Bidirectional overrides, embeddings and isolates: they make text display in another order
# than it is stored ("Trojan Source" spoofing). Marks (U+200E/U+200F) stay allowed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(value):
    """Why `value` is not acceptable as stored text, or None: control characters (NUL, newlines,
    escape...), lone surrogates (not encodable as UTF-8, so not storable) and bidi overrides."""
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            return f"Must not contain control characters (found U+{ord(char):04X})."
        if category == "Cs":
            return "Must not contain lone surrogates (not valid Unicode text)."
        if char in BIDI_CONTROLS:
            return f"Must not contain bidirectional override characters (found U+{ord(char):04X})."
    return None


def plain_text(value):
    """marshmallow validator: see text_problem."""
    problem = text_problem(value)
    if problem:
        raise ma.ValidationError(problem)


def utc_representable(value):
    """marshmallow validator for datetimes: one that cannot be expressed in UTC (year 1 at
    +14:00) could not be stored or compared."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("Out of range.")


def AwareDateTime(**kwargs):  # noqa: N802 (a field factory, used like a field class)
    """An ISO 8601 time with its offset, that converts to UTC."""
    validate = kwargs.pop("validate", None)
    validators = [utc_representable] + ([validate] if callable(validate) else list(validate or []))
    return ma.fields.AwareDateTime(validate=validators, **kwargs)


class StrictSchema(ma.Schema):
    """Unknown fields are an error, so a typo or an injected key never passes silently."""

    class Meta:
        unknown = ma.RAISE


class PageArgsSchema(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


class SchemaDecidesParser(FlaskParser):
    """Let each schema's Meta.unknown decide, for query strings too (webargs would EXCLUDE)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {}

    def _raw_load_json(self, req):
        # JSON nested deeper than the parser's recursion limit is invalid JSON here (400), not
        # a RecursionError (500).
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("Nested too deeply", "[...]", 0)  # a non-empty doc: not "no body"
