"""Uploaded audio waiting for a worker, and what its audio errors answer.

The audio is kept in Redis, which every web and worker process reaches (a local disk would not
be shared between machines), and expires on its own."""
from flask import current_app

UPLOAD_TTL_S = 3600
# The HTTP status of each audio error (audio/decode.py), found on the request path (probe) or
# by the worker (decode): client errors, never retried, since the answer would not change.
AUDIO_ERROR_STATUS = {"unsupported_audio": 415, "empty_audio": 422, "audio_too_long": 422}


def audio_error_status(error):
    return AUDIO_ERROR_STATUS.get(error.code, 422)


def _key(job_id):
    return f"upload:{job_id}"


def store_upload(job_id, data):
    current_app.extensions["redis"].set(_key(job_id), data, ex=UPLOAD_TTL_S)


def upload_bytes(job_id):
    return current_app.extensions["redis"].get(_key(job_id))


def pop_upload(job_id):
    current_app.extensions["redis"].delete(_key(job_id))
