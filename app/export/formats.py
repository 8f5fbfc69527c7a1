"""Reading exports as CSV or JSON, written as a stream of text chunks.

One module for the HTTP endpoint and `flask export`, so both produce the same bytes. Memory
stays constant whatever the export's size: the query is read with a cursor in batches (no
result cache) and text is handed on in chunks of about CHUNK_CHARS.
"""
import csv
import io
import json
from datetime import UTC, datetime

from app.models import EmotionReading, EmotionSession
from app.models.base import ref_id
from app.readings.schemas import ReadingSchema
from ml.params import CLASSES

FORMATS = {"csv": "text/csv", "json": "application/json"}
BATCH_SIZE = 500
CHUNK_CHARS = 64 * 1024

CSV_COLUMNS = (
    "id", "session_id", "source", "timestamp", "window_start", "window_end", "silence", "dominant",
    "confidence", "uncertain", "valence", "arousal", "intensity", *(f"p_{name}" for name in CLASSES), "model_version",
    "session_name",
)
# Spreadsheets run a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_reading_schema = ReadingSchema()


def readings_for_export(owner, session=None, since=None, until=None, source=None, dominant=None):
    """The owner's readings matching the filters, oldest first, read lazily in batches."""
    query = EmotionReading.objects(owner=owner)
    if session is not None:
        query = query.filter(session=session)
    if since is not None:
        query = query.filter(timestamp__gte=since)
    if until is not None:
        query = query.filter(timestamp__lt=until)
    if source is not None:
        query = query.filter(source=source)
    if dominant is not None:
        query = query.filter(dominant=dominant)
    return query.order_by("timestamp", "id").no_cache().batch_size(BATCH_SIZE)


def neutralise(value):
    """A string cell a spreadsheet would evaluate gets a leading quote; other values pass as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class SessionNames:
    """Each reading's session name (an upload's is its file name): one query per session, not
    per reading."""

    def __init__(self):
        self.names = {}

    def __call__(self, reading):
        session_id = ref_id(reading, "session")
        if session_id is None:
            return ""
        if session_id not in self.names:
            session = EmotionSession.objects(id=session_id).only("name").first()
            self.names[session_id] = session.name if session else ""
        return self.names[session_id]


def exported(reading, session_name):
    return {**_reading_schema.dump(reading), "session_name": session_name}


def csv_row(reading, session_name=""):
    item = exported(reading, session_name)
    probabilities = item["probabilities"] or {}
    row = {**item, **{f"p_{name}": probabilities.get(name) for name in CLASSES}}
    row["silence"] = "true" if item["silence"] else "false"
    row["uncertain"] = {True: "true", False: "false", None: ""}[item["uncertain"]]
    return [neutralise(row[column]) for column in CSV_COLUMNS]


def _csv_chunks(readings):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    names = SessionNames()
    for reading in readings:
        writer.writerow(csv_row(reading, names(reading)))
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_chunks(readings):
    parts, size, separator = ["["], 1, ""
    names = SessionNames()
    for reading in readings:
        text = separator + json.dumps(exported(reading, names(reading)), separators=(",", ":"))
        parts.append(text)
        size += len(text)
        separator = ",\n"
        if size >= CHUNK_CHARS:
            yield "".join(parts)
            parts, size = [], 0
    parts.append("]\n")
    yield "".join(parts)


def export_chunks(readings, fmt):
    """The export of `readings` in `fmt` ("csv" or "json") as an iterator of text chunks."""
    return _csv_chunks(readings) if fmt == "csv" else _json_chunks(readings)


def export_filename(fmt, now=None):
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"mood-mirror-readings-{stamp}.{fmt}"
