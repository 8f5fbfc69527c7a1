"""Uploaded audio waiting for a worker. It is kept in Redis, which every web and worker
process reaches (a local disk would not be shared between machines), and expires on its own."""
from flask import current_app

UPLOAD_TTL_S = 3600


def _key(job_id):
    return f"upload:{job_id}"


def store_upload(job_id, data):
    current_app.extensions["redis"].set(_key(job_id), data, ex=UPLOAD_TTL_S)


def upload_bytes(job_id):
    return current_app.extensions["redis"].get(_key(job_id))


def pop_upload(job_id):
    current_app.extensions["redis"].delete(_key(job_id))
