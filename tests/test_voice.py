"""Speaker adaptation in the workers (app/auth/voice.py) and the `uncertain` flag, on the real
Redis, the MongoDB-wire server and the real recognizer."""
import io
import json
import time

import numpy as np
import pytest

from audio import SAMPLE_RATE
from audio.decode import decode
from audio.windows import Windower
from ml import adapt
from ml.params import CLASSES, WINDOW_SAMPLES

from audio_fixtures import encode, speech_like
from helpers import assert_error, run_worker


def upload(api, token, data):
    accepted = api.call("POST", "/api/analyze", token=token, data=data, content_type="audio/flac")
    assert accepted.status_code == 202, accepted.get_json()
    return accepted.get_json()["job_id"]


def profile(api, token):
    response = api.call("GET", "/api/auth/profile", token=token)
    assert response.status_code == 200
    return response.get_json()


def redis_frames(app, user_id):
    """The frame count of the user's baseline in Redis (None: no key; "off": adaptation off)."""
    from app.auth import voice

    value = app.extensions["redis"].get(voice.key(user_id))
    if value is None or value == voice.OFF:
        return None if value is None else "off"
    return float(np.frombuffer(value[:adapt.STATS_SIZE * 4], "<f4")[adapt.MEL_COUNT])


def stored_baseline(user_id):
    from app.models import User

    return User.objects(id=user_id).first().voice_baseline


def upload_windows(data):
    waveform = decode(io.BytesIO(data), target_rate=SAMPLE_RATE)
    windower = Windower()
    windows = windower.feed(waveform)
    last = windower.flush()
    return [w.samples for w in windows + ([last] if last is not None else [])]


def test_windows_of_one_speaker_each_get_the_history_before_them(app):
    """predict_adapted scores window k with what windows 0..k-1 added, nothing of itself or
    later ones, and adds only non-silent windows."""
    from app.analysis.model import predict_adapted, recognizer
    from app.auth.voice import Voice

    speech = speech_like(4.0, SAMPLE_RATE)[0]
    windows = [speech[:WINDOW_SAMPLES], np.zeros(WINDOW_SAMPLES, np.float32), speech[-WINDOW_SAMPLES:]]
    with app.app_context():
        voices = {"a": Voice(adapt.empty(), None)}
        readings = predict_adapted(windows, ["a"] * 3, voices)
        _, added = recognizer().predict_batch(windows, with_stats=True)
        assert added[1] is None and readings[1]["silence"]
        before_third = adapt.merge(adapt.empty(), added[0])
        assert added[0][adapt.MEL_COUNT] > 0
        # The third window was scored with the first window's statistics, not cold.
        expected = recognizer().predict_batch([windows[2]], [before_third])[0]
        cold = recognizer().predict_batch([windows[2]])[0]
        assert readings[2]["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
        assert readings[2]["probabilities"] != pytest.approx(cold["probabilities"], abs=1e-6)
        cold_first = recognizer().predict_batch([windows[0]])[0]["probabilities"]
        assert readings[0]["probabilities"] == pytest.approx(cold_first, abs=1e-6)
        n = adapt.MEL_COUNT
        assert voices["a"].history[n] == pytest.approx(added[0][n] + added[2][n])
        # Off: cold, and the history stays None.
        off = {"b": Voice(None, None)}
        assert predict_adapted(windows[:1], ["b"], off)[0]["probabilities"] == pytest.approx(
            cold_first, abs=1e-6)
        assert off["b"].history is None


def test_a_steady_sound_is_read_but_leaves_the_baseline_alone(app):
    """Hiss loud enough to pass the silence gate gets a reading, as the model hears it, but is no
    voice: the baseline neither learns from it nor is written back for it (adapt.STEADY_BELOW)."""
    from app.analysis.model import predict_adapted
    from app.auth.voice import Voice

    speech = speech_like(4.0, SAMPLE_RATE)[0][:WINDOW_SAMPLES]
    hiss = (0.03 * np.random.default_rng(5).standard_normal(WINDOW_SAMPLES)).astype(np.float32)
    with app.app_context():
        learnt = {"a": Voice(adapt.empty(), None)}
        predict_adapted([speech], ["a"], learnt)
        voices = {"a": Voice(adapt.empty(), None), "b": Voice(adapt.empty(), None)}
        readings = predict_adapted([speech, hiss, hiss], ["a", "a", "b"], voices)
        assert not readings[1]["silence"] and not readings[2]["silence"]
        assert np.array_equal(voices["a"].history, learnt["a"].history)
        assert not voices["b"].changed and not voices["b"].history.any()


def test_a_stream_builds_the_baseline_from_its_speech_windows_only(app):
    from app.analysis.model import recognizer
    from app.live import ready
    from app.models import EmotionReading, EmotionSession, User

    speech = speech_like(6.0, SAMPLE_RATE)[0]
    windows = [speech[:WINDOW_SAMPLES], np.zeros(WINDOW_SAMPLES, np.float32), speech[-WINDOW_SAMPLES:]]
    with app.app_context():
        redis = app.extensions["redis"]
        owner = User(email="voice@example.com", password_hash="x", display_name="v").save()
        session = EmotionSession(owner=owner).save()
        sid, uid = str(session.id), str(owner.id)
        for index, samples in enumerate(windows):
            pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
            descriptor = json.dumps({"session_id": sid, "user_id": uid, "index": index, "start_s": float(index),
                                     "end_s": index + 3.0, "received_at": time.time()})
            _, _, claimed = ready.add_pending(redis, sid, uid, index, 10, pcm, descriptor)
            if claimed:
                ready.enqueue_drain(redis)
        run_worker(app)
        assert EmotionReading.objects(session=session).count() == 3
        _, added = recognizer().predict_batch(
            [(np.clip(w, -1, 1) * 32767).astype("<i2").astype(np.float32) / 32768 for w in windows], with_stats=True)
        speech_frames = added[0][adapt.MEL_COUNT] + added[2][adapt.MEL_COUNT]
        assert redis_frames(app, uid) == pytest.approx(speech_frames)
        # The first write of a baseline goes to MongoDB at once.
        assert stored_baseline(uid)[adapt.MEL_COUNT] == pytest.approx(speech_frames)
        assert owner.reload().voice_baseline_updated_at is not None


def test_uploads_use_and_extend_the_baseline_and_the_profile_shows_it(app, api, ada):
    user_id = profile(api, ada)["id"]
    assert profile(api, ada)["voice_baseline"] == {"exists": False, "speech_seconds": 0.0, "updated_at": None}
    assert profile(api, ada)["adapt_voice"] is True
    data = encode("flac", seconds=5)
    upload(api, ada, data)
    run_worker(app)
    with app.app_context():
        first = redis_frames(app, user_id)
    assert first > 0 and stored_baseline(user_id)[adapt.MEL_COUNT] == pytest.approx(first)
    shown = profile(api, ada)["voice_baseline"]
    assert shown["exists"] and shown["speech_seconds"] == pytest.approx(first / 50, abs=0.01) and shown["updated_at"]

    # The second upload is scored with the first one's statistics, so not cold, and adds to them.
    job = upload(api, ada, data)
    run_worker(app)
    with app.app_context():
        from app.analysis.model import recognizer
        assert redis_frames(app, user_id) > first
        cold = recognizer().predict_batch(upload_windows(data))
    timeline = api.call("GET", f"/api/analyze/{job}", token=ada).get_json()["result"]["timeline"]
    assert timeline[0]["probabilities"] != pytest.approx(cold[0]["probabilities"], abs=1e-6)
    assert all(isinstance(w["uncertain"], bool) for w in timeline if not w["silence"])


def test_reset_clears_redis_and_mongodb_and_is_idempotent(app, api, ada):
    user_id = profile(api, ada)["id"]
    upload(api, ada, encode("flac", seconds=4))
    run_worker(app)
    assert profile(api, ada)["voice_baseline"]["exists"]
    for _ in range(2):
        response = api.call("DELETE", "/api/auth/profile/voice-baseline", token=ada)
        assert response.status_code == 204
    with app.app_context():
        assert redis_frames(app, user_id) == 0
    assert not stored_baseline(user_id)
    assert profile(api, ada)["voice_baseline"] == {"exists": False, "speech_seconds": 0.0, "updated_at": None}
    assert_error(api.call("DELETE", "/api/auth/profile/voice-baseline"), 401)


def test_adaptation_off_scores_cold_and_leaves_the_baseline_alone(app, api, ada):
    user_id = profile(api, ada)["id"]
    data = encode("flac", seconds=5)
    upload(api, ada, data)
    run_worker(app)
    before = list(stored_baseline(user_id))
    response = api.call("PUT", "/api/auth/profile", token=ada, json={"adapt_voice": False})
    assert response.status_code == 200 and response.get_json()["adapt_voice"] is False
    job = upload(api, ada, data)
    run_worker(app)
    with app.app_context():
        from app.analysis.model import recognizer
        assert redis_frames(app, user_id) == "off"
        cold = recognizer().predict_batch(upload_windows(data))
    assert stored_baseline(user_id) == pytest.approx(before)
    timeline = api.call("GET", f"/api/analyze/{job}", token=ada).get_json()["result"]["timeline"]
    assert len(timeline) == len(cold)
    for window, expected in zip(timeline, cold):
        assert window["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
    # The baseline is kept while unused, and used again once adaptation is back on.
    assert profile(api, ada)["voice_baseline"]["exists"]
    api.call("PUT", "/api/auth/profile", token=ada, json={"adapt_voice": True})
    upload(api, ada, data)
    run_worker(app)
    with app.app_context():
        assert redis_frames(app, user_id) > before[adapt.MEL_COUNT]


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_adapt_voice_must_be_a_boolean(api, ada, value):
    error = assert_error(api.call("PUT", "/api/auth/profile", token=ada, json={"adapt_voice": value}), 422)
    assert "adapt_voice" in error["details"]["fields"]["json"]


def test_account_deletion_deletes_the_baseline(app, api):
    token = api.register(email="gone@example.com")["access_token"]
    user_id = profile(api, token)["id"]
    upload(api, token, encode("flac", seconds=4))
    run_worker(app)
    with app.app_context():
        assert redis_frames(app, user_id) > 0
    assert api.call("DELETE", "/api/auth/profile", token=token).status_code == 204
    with app.app_context():
        assert redis_frames(app, user_id) is None


def test_uncertain_is_stored_and_returned(api, ada):
    uniform = {name: 1 / len(CLASSES) for name in CLASSES}
    sure = {name: float(name == "sad") for name in CLASSES}
    guess = api.call("POST", "/api/readings", token=ada, json={"probabilities": uniform}).get_json()
    finding = api.call("POST", "/api/readings", token=ada, json={"probabilities": sure}).get_json()
    assert guess["uncertain"] is True and finding["uncertain"] is False
    listed = {r["id"]: r["uncertain"] for r in api.call("GET", "/api/readings", token=ada).get_json()["items"]}
    assert listed == {guess["id"]: True, finding["id"]: False}
    from app.models import EmotionReading
    assert EmotionReading.objects(id=guess["id"]).first().uncertain is True


def test_windows_of_a_deleted_account_are_scored_cold_and_leave_no_key(app):
    from bson import ObjectId

    from app.auth import voice

    gone = str(ObjectId())
    with app.app_context():
        voices = voice.load([gone])
        assert voices[gone].history is None
        voice.save(voices)
        assert app.extensions["redis"].get(voice.key(gone)) is None
