"""Shared field helpers for the MongoEngine documents."""
from datetime import UTC, datetime


def utcnow():
    # MongoDB keeps milliseconds; truncating here makes a stored time equal its read-back.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
