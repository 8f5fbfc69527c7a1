"""/api/export: the caller's readings as a CSV or JSON attachment."""
from flask import Response, stream_with_context

from app.api import ApiBlueprint
from app.api.access import get_owned, owner_scope
from app.export.formats import CSV_COLUMNS, FORMATS, export_chunks, export_filename, readings_for_export
from app.export.schemas import ExportArgsSchema, ExportedReadingSchema
from app.models import EmotionSession

bp = ApiBlueprint("export", __name__, url_prefix="/api/export",
                  description="Streamed exports of readings (CSV or JSON)")

CSV_DESCRIPTION = (
    "One header row, then one row per reading: " + ", ".join(CSV_COLUMNS) + ". String cells that "
    "start with = + - @, a tab or a carriage return get a leading ' so spreadsheets do not run them."
)


@bp.authenticated("", methods=["GET"])
@bp.arguments(ExportArgsSchema, location="query")
@bp.errors(401, 403, 404)
@bp.doc(responses={"200": {
    "description": "The readings, oldest first, streamed as an attachment",
    "content": {"application/json": {"schema": ExportedReadingSchema(many=True)},
                "text/csv": {"schema": {"type": "string", "description": CSV_DESCRIPTION}}},
}})
def export_readings(args):
    """Download the caller's readings (an admin: any user's) matching the filters, in constant memory"""
    owner = owner_scope(args.get("user_id"))
    session = get_owned(EmotionSession, args["session_id"], "session_id") if args.get("session_id") else None
    readings = readings_for_export(owner, session, args.get("since"), args.get("until"), args.get("source"),
                                   args.get("dominant"))
    fmt = args["format"]
    return Response(
        stream_with_context(export_chunks(readings, fmt)),
        mimetype=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{export_filename(fmt)}"',
                 # Personal data: no shared or browser cache keeps a copy.
                 "Cache-Control": "no-store"},
    )
