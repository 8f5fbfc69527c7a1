"""/api/analyze and /api/results: uploads of recordings, analysed in the background by workers
(app/analysis/jobs.py)."""
import io
import unicodedata

from flask import current_app, request, url_for
from flask_jwt_extended import current_user
from rq import Callback, Queue, Retry

from app.analysis.schemas import AnalyzeArgsSchema, JobAcceptedSchema, JobSchema, ResultsArgsSchema
from app.analysis.uploads import audio_error_status, store_upload
from app.api import ApiBlueprint
from app.api.access import get_owned, owner_scope
from app.api.errors import ApiError, invalid_input
from app.api.pagination import page_schema, paginate
from app.api.schemas import BIDI_CONTROLS
from app.models import AnalysisJob, EmotionSession
from audio.decode import AudioError, AudioTooLong, probe

bp = ApiBlueprint("analysis", __name__, url_prefix="/api", description="Analyse recordings")

RAW_AUDIO_TYPES = ("audio/", "video/webm", "video/mp4", "application/ogg", "application/octet-stream")
UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def display_filename(name):
    """The name an upload is listed under: its last path part (a client may send a path, even
    ../../etc/passwd), without control characters, at most 255 characters. It is only ever
    shown: uploads are stored under their job id, never under a name a client chose."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name
                   if unicodedata.category(char) not in ("Cc", "Cs") and char not in BIDI_CONTROLS)
    return name.strip(" .")[:255]


def _uploaded_audio():
    """(bytes, filename, content type) from a multipart `file` or a raw audio body."""
    if request.mimetype == "multipart/form-data":
        # A part whose name cannot be parsed has the name None: sort by text, never compare None.
        extra = sorted({str(name) for name in set(request.form) | set(request.files)} - {"file"})
        if extra:
            raise ApiError(422, f"Invalid input: {', '.join(extra)}",
                           details={"fields": {"form": {name: ["Unknown field."] for name in extra}}})
        upload = request.files.get("file")
        if upload is None:
            raise invalid_input("form", "file", "Missing audio file.")
        return upload.read(), upload.filename or "", upload.mimetype or ""
    if request.mimetype.startswith(RAW_AUDIO_TYPES):
        data = request.get_data()
        # A chunked body (no Content-Length) is cut at MAX_CONTENT_LENGTH by Werkzeug, silently,
        # on servers that pass such bodies on: one that reaches the limit is too large.
        if request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]:
            raise ApiError(413, f"Larger than {current_app.config['MAX_UPLOAD_MB']} MB")
        return data, "", request.mimetype
    raise ApiError(415, "Send audio as multipart/form-data (field `file`) or as a raw body with an audio Content-Type",
                   details={"content_type": request.content_type})


@bp.authenticated("/analyze", methods=["POST"])
@bp.arguments(AnalyzeArgsSchema, location="query")
@bp.response(202, JobAcceptedSchema)
@bp.errors(401, 404, d404="session_id is not one of your sessions")
@bp.alt_response(413, description="Larger than MAX_UPLOAD_MB")
@bp.alt_response(415, description="Not audio, or a format that cannot be decoded")
@bp.alt_response(422, description="Too long, empty, or a bad field")
@bp.doc(**UPLOAD_DOC)
def analyze(args):
    """Analyse a recording (WAV, FLAC, OGG Vorbis/Opus, MP3, WebM/Opus, M4A/AAC) in the background"""
    session = None
    if "session_id" in args:
        session = get_owned(EmotionSession, args["session_id"], "session_id", admin_may=False)
    data, filename, content_type = _uploaded_audio()
    if not data:
        raise ApiError(422, "The file is empty: choose a recording with sound in it", code="empty_audio",
                       details={"fields": {"file": ["The file is empty."]}})
    try:
        info = probe(io.BytesIO(data), max_seconds=current_app.config["MAX_AUDIO_SECONDS"])
    except AudioTooLong as error:
        raise ApiError(audio_error_status(error), error.message, code=error.code,
                       details={"max_seconds": error.max_seconds})
    except AudioError as error:
        raise ApiError(audio_error_status(error), error.message, code=error.code)
    job = AnalysisJob(owner=current_user, session=session, filename=display_filename(filename),
                      content_type=content_type[:127], size_bytes=len(data), duration_s=info.duration_s).save()
    store_upload(str(job.id), data)
    Queue("analysis", connection=current_app.extensions["redis"]).enqueue(
        "app.analysis.jobs.analyze_upload", str(job.id), job_id=f"upload-{job.id}",
        retry=Retry(max=3, interval=[1, 5, 15]), on_failure=Callback("app.analysis.jobs.upload_failed"),
        job_timeout=600, result_ttl=3600, failure_ttl=24 * 3600,
    )
    return {"job_id": str(job.id), "status_url": url_for("analysis.job_status", job_id=job.id)}


@bp.authenticated("/analyze/<job_id>", methods=["GET"])
@bp.response(200, JobSchema)
@bp.errors(401, 404, 422)
def job_status(job_id):
    """Status and progress of an analysis; its result once finished, its reason once failed"""
    return get_owned(AnalysisJob, job_id, "job_id")


@bp.authenticated("/results", methods=["GET"])
@bp.arguments(ResultsArgsSchema, location="query")
@bp.response(200, page_schema(JobSchema))
@bp.errors(401, 404)
def results(args):
    """The caller's past analyses, newest first; filter by session, date and status"""
    query = AnalysisJob.objects(owner=owner_scope())
    if "session_id" in args:
        query = query.filter(session=get_owned(EmotionSession, args["session_id"], "session_id"))
    for field, lookup in (("since", "created_at__gte"), ("until", "created_at__lt"), ("status", "status")):
        if field in args:
            query = query.filter(**{lookup: args[field]})
    return paginate(query, args["limit"], args["cursor"], "created_at")
