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
