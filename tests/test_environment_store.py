"""app/environment/store.py against the real Redis and MongoDB-wire server: a colour drift within
one emotion is stored and broadcast at most every EMIT_DRIFT_INTERVAL_S of reading time."""
from datetime import UTC, datetime, timedelta

from app.environment.mapping import EMIT_DELTA_E, EMIT_DRIFT_INTERVAL_S, delta_e, environment_response, smooth_state
from app.environment.store import update_environments
from app.models import EmotionSession, EnvironmentResponse, User
from app.readings.store import store_readings
from ml.inference import reading as reading_of
from ml.params import CLASSES

START = datetime(2026, 12, 4, 21, 0, 0, tzinfo=UTC)


def probabilities(happy, angry):
    rest = (1.0 - happy - angry) / (len(CLASSES) - 2)
    return [happy if c == "happy" else angry if c == "angry" else rest for c in CLASSES]


def test_a_drift_within_one_emotion_waits_for_the_interval(app):
    with app.app_context():
        user = User(email="drift@example.com", password_hash="x", display_name="D").save()
        session = EmotionSession(owner=user, source="stream").save()
        # happy throughout, a growing share of anger pulling the light towards red, one reading a second
        shares = [(0.9, 0.02)] + [(0.55, 0.4)] * 7
        readings = store_readings([
            (user.id, session.id, reading_of(probabilities(*share)), "stream",
             {"window_key": f"{session.id}:{i}", "timestamp": START + timedelta(seconds=i)})
            for i, share in enumerate(shares)])
        emitted_at = [i for i, reading in enumerate(readings)
                      if update_environments([(user.id, session.id, reading)])[0] is not None]

        # what the light would have shown: the drift passed ΔE 10 within the interval, so it was held back
        state, first, drifts = None, None, []
        for i, reading in enumerate(readings):
            state = smooth_state(state, reading)
            proposal = environment_response(state)
            assert proposal["state"]["dominant"] == "happy"
            first = first or proposal
            drifts.append(delta_e(first["lighting"]["hex"], proposal["lighting"]["hex"]))
        assert emitted_at[:2] == [0, int(EMIT_DRIFT_INTERVAL_S)]
        assert any(d > EMIT_DELTA_E for d in drifts[1:int(EMIT_DRIFT_INTERVAL_S)])
        assert EnvironmentResponse.objects(session=session).count() == len(emitted_at)
