"""One pagination convention for every list: `limit` and an opaque `cursor`.

A page answers {"items": [...], "next_cursor": str | null, "next": url | null}. Cursors mark a
position in (sort time, id) order, newest first, so pages stay stable while new documents
arrive (offsets would shift under inserts).
"""
import base64
import functools
from datetime import UTC, datetime

import marshmallow as ma
from bson import ObjectId
from bson.errors import InvalidId
from flask import request, url_for

from app.api.errors import invalid_input


def encode_cursor(when, doc_id):
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{doc_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, doc_id = raw.split("|")
        when = datetime.fromisoformat(when)
        if when.tzinfo is not None:
            when = when.astimezone(UTC)  # one that cannot be in UTC could not be compared
        return when, ObjectId(doc_id)
    except (ValueError, OverflowError, InvalidId, UnicodeDecodeError):
        raise invalid_input("query", "cursor", "Not a valid cursor.")


def paginate(queryset, limit, cursor, time_field):
    """A page of `queryset` newest first by `time_field`, continuing after `cursor`."""
    if cursor:
        when, doc_id = decode_cursor(cursor)
        queryset = queryset.filter(
            __raw__={"$or": [{time_field: {"$lt": when}}, {time_field: when, "_id": {"$lt": doc_id}}]}
        )
    docs = list(queryset.order_by(f"-{time_field}", "-id").limit(limit + 1))
    items, more = docs[:limit], len(docs) > limit
    next_cursor = encode_cursor(getattr(items[-1], time_field), items[-1].id) if more else None
    next_url = None
    if next_cursor:
        args = {**request.args.to_dict(), "cursor": next_cursor, "limit": limit}
        next_url = url_for(request.endpoint, _external=False, **(request.view_args or {}), **args)
    return {"items": items, "next_cursor": next_cursor, "next": next_url}


@functools.cache
def page_schema(item_schema):
    """The response schema of a page of `item_schema` items (for OpenAPI)."""
    return type(
        f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "next_cursor": ma.fields.String(allow_none=True),
            "next": ma.fields.String(allow_none=True, metadata={"description": "URL of the next page"}),
        },
    )
