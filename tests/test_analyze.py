"""Uploads: every format people have, every rejection, and the worker's result."""
import io

import numpy as np
import pytest
from rq import Queue

from audio_fixtures import FORMATS, encode, encode_array, image_bytes, video_without_audio, wav_header_only
from helpers import assert_error, run_worker


def upload(api, token, data, name="talk.bin", content_type=None, query=""):
    return api.call("POST", f"/api/analyze{query}", token=token,
                    data={"file": (io.BytesIO(data), name, content_type or "application/octet-stream")},
                    content_type="multipart/form-data")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_is_analysed(app, api, ada, name):
    accepted = upload(api, ada, encode(name, seconds=3.5), f"clip{FORMATS[name].suffix}", FORMATS[name].mime)
    assert accepted.status_code == 202, accepted.get_json()
    body = accepted.get_json()
    queued = api.call("GET", body["status_url"], token=ada).get_json()
    assert queued["status"] == "queued" and queued["progress"] == 0
    run_worker(app)
    job = api.call("GET", body["status_url"], token=ada).get_json()
    assert job["status"] == "finished", job
    result = job["result"]
    # 3.5 s: one full 3 s window and the 1-3.5 s tail.
    assert [(w["start"], w["end"]) for w in result["timeline"]] == [(0.0, 3.0), (1.0, pytest.approx(3.5, abs=0.06))]
    assert abs(sum(result["overall"]["probabilities"].values()) - 1) < 1e-3
    assert result["overall"]["dominant"] in result["overall"]["probabilities"]
    assert {"lighting", "audio", "visual", "smart_home"} <= set(result["environment"])
    assert job["progress"] == 1.0 and job["duration_s"] == pytest.approx(3.5, abs=0.06)


def test_raw_body_upload_with_session_stores_readings_once_even_when_retried(app, api, ada):
    from app.analysis.jobs import analyze_upload
    from app.models import EmotionReading

    session = api.call("POST", "/api/sessions", token=ada, json={}).get_json()["id"]
    accepted = api.call("POST", f"/api/analyze?session_id={session}", token=ada, data=encode("flac", seconds=5),
                        content_type="audio/flac")
    assert accepted.status_code == 202
    job_id = accepted.get_json()["job_id"]
    with app.app_context():
        from app.analysis.uploads import upload_bytes
        data = upload_bytes(job_id)
    run_worker(app)
    assert EmotionReading.objects(session=session).count() == 3  # 0-3, 1-4, 2-5
    # A retry of the same job (the audio is put back as if the first attempt had died late).
    with app.app_context():
        from app.analysis.uploads import store_upload
        store_upload(job_id, data)
        analyze_upload(job_id)
    assert EmotionReading.objects(session=session).count() == 3
    assert EmotionReading.objects(session=session, source="upload").count() == 3
    results = api.call("GET", f"/api/results?session_id={session}", token=ada).get_json()["items"]
    assert [r["job_id"] for r in results] == [job_id]
    assert results[0]["attempts"] == 2


@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        (b"\x00\x01garbage" * 100, "audio/wav", 415, "unsupported_audio"),
        (b"hello, this is text, not audio\n" * 20, "text/plain", 415, "unsupported_audio"),
        (image_bytes("png"), "image/png", 415, "unsupported_audio"),
        (image_bytes("mjpeg"), "image/jpeg", 415, "unsupported_audio"),
        (video_without_audio(), "video/mp4", 415, "unsupported_audio"),
        (b"", "audio/wav", 422, "empty_audio"),
    ],
)
def test_not_audio_is_refused_before_queueing(app, api, ada, data, content_type, status, code):
    from app.models import AnalysisJob

    assert_error(upload(api, ada, data, "x", content_type), status, code)
    assert AnalysisJob.objects.count() == 0
    assert Queue("analysis", connection=app.extensions["redis"]).count == 0


def test_too_long_is_422_and_too_big_is_413(app, api, ada):
    limit = app.config["MAX_AUDIO_SECONDS"]
    app.config["MAX_AUDIO_SECONDS"] = 2
    try:
        error = assert_error(upload(api, ada, encode("wav_s16", seconds=3)), 422, "audio_too_long")
    finally:
        app.config["MAX_AUDIO_SECONDS"] = limit
    assert error["details"]["max_seconds"] == 2
    big = b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    assert_error(api.call("POST", "/api/analyze", token=ada, data=big, content_type="audio/wav"), 413)


def test_silence_and_header_only_fail_in_the_worker_with_reasons(app, api, ada):
    silent = encode_array(np.zeros((1, 16000 * 3), np.float32), 16000, "wav_s16")
    no_speech = upload(api, ada, silent, "quiet.wav", "audio/wav").get_json()["job_id"]
    empty = upload(api, ada, wav_header_only(), "empty.wav", "audio/wav")
    run_worker(app)
    job = api.call("GET", f"/api/analyze/{no_speech}", token=ada).get_json()
    assert job["status"] == "failed"
    assert job["error"] == {"code": "no_speech", "message": "No speech was found in the recording", "status": 422}
    if empty.status_code == 202:  # the header promises audio: only decoding finds none
        job = api.call("GET", f"/api/analyze/{empty.get_json()['job_id']}", token=ada).get_json()
        assert job["status"] == "failed" and job["error"]["code"] == "empty_audio"
    else:
        assert_error(empty, 422, "empty_audio")


def test_upload_rejections_of_the_request_itself(api, ada):
    assert_error(api.call("POST", "/api/analyze", token=ada, data={"other": (io.BytesIO(b"x"), "x")},
                          content_type="multipart/form-data"), 422)
    assert_error(api.call("POST", "/api/analyze", token=ada, json={"file": "abc"}), 415)
    assert_error(upload(api, ada, encode("wav_s16"), query="?session_id=" + "0" * 24), 404)
    assert_error(upload(api, ada, encode("wav_s16"), query="?colour=red"), 422)
    assert_error(api.call("POST", "/api/analyze", data=encode("wav_s16"), content_type="audio/wav"), 401)


def test_jobs_and_results_are_private(api, ada):
    bob = api.register(email="bob@example.com")["access_token"]
    job_id = upload(api, ada, encode("wav_s16")).get_json()["job_id"]
    assert_error(api.call("GET", f"/api/analyze/{job_id}", token=bob), 404)
    assert api.call("GET", "/api/results", token=bob).get_json()["items"] == []
    assert [r["job_id"] for r in api.call("GET", "/api/results", token=ada).get_json()["items"]] == [job_id]


def test_an_upload_becomes_a_session_named_after_the_file_with_its_duration(app, api, ada):
    from app.models import EmotionReading

    job_id = upload(api, ada, encode("flac", seconds=5), "Team meeting.flac", "audio/flac").get_json()["job_id"]
    run_worker(app)
    job = api.call("GET", f"/api/analyze/{job_id}", token=ada).get_json()
    assert job["status"] == "finished" and job["filename"] == "Team meeting.flac"
    session_id = job["session_id"]
    assert session_id
    session = api.call("GET", f"/api/sessions/{session_id}", token=ada).get_json()
    assert (session["name"], session["source"], session["status"]) == ("Team meeting.flac", "upload", "ended")
    listed = api.call("GET", "/api/sessions", token=ada).get_json()["items"]
    assert [s["id"] for s in listed] == [session_id]
    analytics = api.call("GET", f"/api/sessions/{session_id}/analytics", token=ada).get_json()
    assert analytics["duration_seconds"] == pytest.approx(5.0, abs=0.06)
    assert analytics["reading_count"] + analytics["silent_windows"] == 3
    insights = api.call("GET", f"/api/sessions/{session_id}/insights", token=ada).get_json()
    assert insights["summary"]
    # Every reading is filed under the session, placed at its position in the recording.
    readings = list(EmotionReading.objects(session=session_id).order_by("window_start"))
    assert len(readings) == 3
    offsets = [(r.timestamp - readings[0].timestamp).total_seconds() for r in readings]
    assert offsets == pytest.approx([r.window_start for r in readings], abs=0.01)
    exported = api.call("GET", "/api/export?format=json", token=ada).get_json()
    assert {(r["session_id"], r["session_name"]) for r in exported} == {(session_id, "Team meeting.flac")}
    as_csv = api.call("GET", "/api/export?format=csv", token=ada).get_data(as_text=True).splitlines()
    assert as_csv[0].endswith(",session_name") and all(row.endswith(",Team meeting.flac") for row in as_csv[1:])
    # The result counts windows per emotion and says whether one dominates.
    result = job["result"]
    spoken = [w["dominant"] for w in result["timeline"] if not w["silence"]]
    assert result["distribution"][result["top"]] == pytest.approx(spoken.count(result["top"]) / len(spoken))
    assert result["mixed"] == (result["distribution"][result["top"]] <= 0.5)
    # Deleting the session takes its readings and the analysis with it.
    assert api.call("DELETE", f"/api/sessions/{session_id}", token=ada).status_code == 204
    assert EmotionReading.objects(owner__ne=None).count() == 0
    assert_error(api.call("GET", f"/api/analyze/{job_id}", token=ada), 404)


def test_an_upload_attached_to_a_session_makes_no_other_and_a_failed_one_leaves_none(app, api, ada):
    from app.models import EmotionSession

    mine = api.call("POST", "/api/sessions", token=ada, json={"name": "Mine"}).get_json()["id"]
    attached = upload(api, ada, encode("flac", seconds=4), "a.flac", query=f"?session_id={mine}").get_json()["job_id"]
    silent = encode_array(np.zeros((1, 16000 * 3), np.float32), 16000, "wav_s16")
    quiet = upload(api, ada, silent, "quiet.wav", "audio/wav").get_json()["job_id"]
    run_worker(app)
    assert api.call("GET", f"/api/analyze/{attached}", token=ada).get_json()["session_id"] == mine
    failed = api.call("GET", f"/api/analyze/{quiet}", token=ada).get_json()
    assert failed["status"] == "failed" and failed["session_id"] is None
    assert [s.name for s in EmotionSession.objects] == ["Mine"]


def test_an_empty_file_and_a_too_large_one_are_told_in_a_sentence(app, api, ada):
    error = assert_error(upload(api, ada, b"", "empty.wav", "audio/wav"), 422, "empty_audio")
    assert error["message"] == "The file is empty: choose a recording with sound in it"
    big = b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    error = assert_error(upload(api, ada, big, "big.wav", "audio/wav"), 413)
    assert error["message"] == "The upload is larger than 25 MB, the most this server accepts"
    assert error["details"] == {"max_mb": 25}
