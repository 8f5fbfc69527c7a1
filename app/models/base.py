"""Shared field helpers for the MongoEngine documents."""
from datetime import UTC, datetime


def utcnow():
    # MongoDB keeps milliseconds; truncating here makes a stored time equal its read-back.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ref_id(doc, field):
    """The referenced document's id as a string, without fetching it (None when unset)."""
    value = doc._data.get(field)
    if value is None:
        return None
    return str(getattr(value, "id", value))


def check_son(document_class, son):
    """Check a raw document (the dict that to_mongo would give) field by field as the class's
    validate() does (required fields, choices, ranges, types), without building the object:
    the hot paths write raw documents, where building, validating and converting a MongoEngine
    object cost more than the rest of their work (docs/BENCHMARKS.md). The class's clean()
    rules are the caller's to apply."""
    fields = document_class._fields
    for name, field in fields.items():
        if field.required and son.get(field.db_field) is None:
            field.error("Field is required", field_name=name)
    for name, value in son.items():
        if name != "_id" and value is not None:
            fields[name]._validate(value)
    return son
