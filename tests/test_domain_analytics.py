"""Analytics on crafted readings whose answers are worked out by hand in the comments."""
import random
from datetime import datetime, timedelta, timezone

import pytest

from app.domain.analytics import (
    collective_insights,
    collective_snapshot,
    distribution,
    dominant_emotion,
    session_analytics,
    session_insights,
)

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(seconds, dominant, valence, arousal, intensity=0.5, probabilities=None, user=None, session=None):
    probs = probabilities or ({"neutral": 1.0} if dominant == "neutral" else {dominant: 0.6, "neutral": 0.4})
    r = {"timestamp": at(seconds), "probabilities": probs, "dominant": dominant,
         "confidence": max(probs.values()), "valence": valence, "arousal": arousal, "intensity": intensity}
    if user is not None:
        r["user_id"] = user
    if session is not None:
        r["session_id"] = session
    return r


# Successive steps in the valence-arousal plane (dv, da) -> length:
# (0.2, 0) 0.2 | (0.3, 0.4) 0.5 | (0.3, 0.4) 0.5 | (0.3, 0) 0.3 | (0.3, 0) 0.3
SESSION = [
    reading(0, "sad", -0.6, -0.2, 0.2),
    reading(10, "sad", -0.4, -0.2, 0.4),
    reading(20, "neutral", -0.1, 0.2, 0.6),
    reading(30, "happy", 0.2, 0.6, 0.8),
    reading(40, "happy", 0.5, 0.6, 1.0),
    reading(50, "happy", 0.8, 0.6, 0.6),
]


# ---------------------------------------------------------------------------- session analytics


def test_session_analytics_numbers():
    result = session_analytics(SESSION, started_at=at(-5), ended_at=at(60))
    assert result["duration_seconds"] == 65.0
    assert result["reading_count"] == 6
    assert result["distribution"]["happy"] == pytest.approx(3 / 6)
    assert result["distribution"]["sad"] == pytest.approx(2 / 6)
    assert result["distribution"]["neutral"] == pytest.approx(1 / 6)
    assert result["distribution"]["angry"] == 0.0
    assert sum(result["distribution"].values()) == pytest.approx(1.0)
    assert result["dominant_emotion"] == "happy"
    # valence sum -0.6-0.4-0.1+0.2+0.5+0.8 = 0.4; arousal sum 1.6; intensity sum 3.6
    assert result["valence"]["mean"] == pytest.approx(0.4 / 6)
    assert result["valence"]["peak"] == {"value": 0.8, "timestamp": at(50)}
    assert result["valence"]["low"] == {"value": -0.6, "timestamp": at(0)}
    assert result["arousal"]["mean"] == pytest.approx(1.6 / 6)
    # Arousal 0.6 is reached three times and -0.2 twice: the earliest time is reported.
    assert result["arousal"]["peak"] == {"value": 0.6, "timestamp": at(30)}
    assert result["arousal"]["low"] == {"value": -0.2, "timestamp": at(0)}
    assert result["mean_intensity"] == pytest.approx(0.6)
    assert [p["timestamp"] for p in result["timeline"]] == [at(s) for s in (0, 10, 20, 30, 40, 50)]
    assert result["timeline"][2] == {"timestamp": at(20), "count": 1, "dominant": "neutral",
                                     "valence": -0.1, "arousal": 0.2, "intensity": 0.6}


def test_open_session_lasts_until_its_latest_reading():
    assert session_analytics(SESSION, started_at=at(-5))["duration_seconds"] == 55.0


def test_timeline_downsampling_averages_equal_chunks():
    first, second = session_analytics(SESSION, started_at=at(0), max_points=2)["timeline"]
    assert first["timestamp"] == at(0) and first["count"] == 3 and first["dominant"] == "sad"
    assert first["valence"] == pytest.approx(-1.1 / 3)
    assert first["arousal"] == pytest.approx(-0.2 / 3)
    assert first["intensity"] == pytest.approx(0.4)
    assert second["timestamp"] == at(30) and second["count"] == 3 and second["dominant"] == "happy"
    assert second["valence"] == pytest.approx(0.5)
    assert second["arousal"] == pytest.approx(0.6)
    assert second["intensity"] == pytest.approx(0.8)


def test_empty_session_analytics():
    result = session_analytics([], started_at=at(0), ended_at=at(30))
    assert result == {
        "duration_seconds": 30.0,
        "reading_count": 0,
        "distribution": {},
        "dominant_emotion": None,
        "valence": {"mean": None, "peak": None, "low": None},
        "arousal": {"mean": None, "peak": None, "low": None},
        "mean_intensity": None,
        "timeline": [],
    }
    assert session_analytics([], started_at=at(0))["duration_seconds"] == 0.0


def test_unsorted_and_naive_timestamps_give_the_same_answer():
    shuffled = SESSION[:]
    random.Random(5).shuffle(shuffled)
    naive = [{**r, "timestamp": r["timestamp"].replace(tzinfo=None)} for r in shuffled]
    expected = session_analytics(SESSION, started_at=at(-5), ended_at=at(60))
    assert session_analytics(naive, started_at=at(-5).replace(tzinfo=None), ended_at=at(60)) == expected
    assert session_insights(naive) == session_insights(SESSION)


def test_dominant_ties_break_on_mean_probability_then_name():
    tied = [
        reading(0, "happy", 0.5, 0.3, probabilities={"happy": 0.9, "sad": 0.1}),
        reading(1, "happy", 0.5, 0.3, probabilities={"happy": 0.9, "sad": 0.1}),
        reading(2, "sad", -0.5, -0.3, probabilities={"sad": 0.6, "happy": 0.4}),
        reading(3, "sad", -0.5, -0.3, probabilities={"sad": 0.6, "happy": 0.4}),
    ]
    # Two each; mean P(happy) = (0.9+0.9+0.4+0.4)/4 = 0.65 > mean P(sad) = 0.35.
    assert dominant_emotion(tied) == "happy"
    # Mirror image: sad now has the higher mean probability.
    mirrored = [{**r, "probabilities": {"happy": r["probabilities"]["sad"], "sad": r["probabilities"]["happy"]}}
                for r in tied]
    assert dominant_emotion(mirrored) == "sad"
    symmetric = [reading(0, "sad", 0, 0, probabilities={"sad": 0.5, "happy": 0.5}),
                 reading(1, "happy", 0, 0, probabilities={"sad": 0.5, "happy": 0.5})]
    assert dominant_emotion(symmetric) == "happy"  # full tie: alphabetical
    assert dominant_emotion([]) is None


def test_distribution_keeps_unknown_labels():
    result = distribution([reading(0, "silence", 0, 0, probabilities={"silence": 1.0})])
    assert result["silence"] == 1.0 and result["happy"] == 0.0


# ---------------------------------------------------------------------------- session insights


def test_session_insights_numbers():
    result = session_insights(SESSION)
    assert result["reading_count"] == 6
    assert result["volatility"] == pytest.approx((0.2 + 0.5 + 0.5 + 0.3 + 0.3) / 5)  # 0.36
    assert result["volatility_level"] == "high"
    # Same dominant in pairs (0,1), (3,4), (4,5): 3 of 5.
    assert result["stability"] == pytest.approx(0.6)
    progression = result["progression"]
    assert progression["first_third"]["count"] == 2
    assert progression["first_third"]["valence"] == pytest.approx(-0.5)
    assert progression["first_third"]["arousal"] == pytest.approx(-0.2)
    assert progression["first_third"]["dominant"] == "sad"
    assert progression["last_third"]["valence"] == pytest.approx(0.65)
    assert progression["last_third"]["arousal"] == pytest.approx(0.6)
    assert progression["valence_change"] == pytest.approx(1.15)
    assert progression["arousal_change"] == pytest.approx(0.8)
    assert progression["valence_direction"] == "improving"
    assert progression["arousal_direction"] == "rising"
    assert [p["timestamp"] for p in result["peaks"]] == [at(50), at(40), at(30)]
    assert [p["valence"] for p in result["peaks"]] == [0.8, 0.5, 0.2]
    assert [p["timestamp"] for p in result["lows"]] == [at(0), at(10), at(20)]
    assert result["lows"][0] == {"timestamp": at(0), "dominant": "sad", "valence": -0.6, "arousal": -0.2}
    assert result["transitions"] == [
        {"from": "neutral", "to": "happy", "count": 1},
        {"from": "sad", "to": "neutral", "count": 1},
    ]
    assert result["transition_count"] == 2
    assert result["summary"] == (
        "6 readings over 50 s, mostly happy (50%). "
        "Valence rose from -0.50 in the first third to +0.65 in the last, with high volatility "
        "(0.36 per reading) and the same dominant emotion in 60% of consecutive readings. "
        "Most frequent shift: neutral to happy (1x). "
        "Highest valence +0.80 at 12:00:50 UTC (happy); lowest -0.60 at 12:00:00 UTC (sad)."
    )


def test_peaks_are_separated_in_time():
    # With 15 s separation: 50 s wins, 40 s is too close, 30 s is kept, 20 s is too close to
    # 30 s, 10 s is kept.
    peaks = session_insights(SESSION, min_separation_s=15)["peaks"]
    assert [p["timestamp"] for p in peaks] == [at(50), at(30), at(10)]


def test_transitions_count_repeats_and_steady_session():
    flips = [reading(i, d, 0, 0) for i, d in enumerate(["calm", "sad", "calm", "sad", "sad", "angry"])]
    result = session_insights(flips)
    assert result["transitions"] == [
        {"from": "calm", "to": "sad", "count": 2},
        {"from": "sad", "to": "angry", "count": 1},
        {"from": "sad", "to": "calm", "count": 1},
    ]
    assert result["stability"] == pytest.approx(1 / 5)
    steady = session_insights([reading(i * 5, "calm", 0.3, -0.4) for i in range(4)])
    assert steady["volatility"] == 0.0 and steady["volatility_level"] == "low"
    assert steady["stability"] == 1.0
    assert steady["progression"]["valence_direction"] == "steady"
    assert steady["transitions"] == [] and "Most frequent shift" not in steady["summary"]
    assert "Valence held steady (+0.30 in the first third, +0.30 in the last)" in steady["summary"]


def test_declining_summary_and_moderate_volatility():
    falling = [reading(0, "happy", 0.4, 0.0), reading(60, "calm", 0.2, 0.0),
               reading(150, "sad", 0.0, 0.0)]
    result = session_insights(falling)
    assert result["volatility"] == pytest.approx(0.2)
    assert result["volatility_level"] == "moderate"
    assert result["progression"]["valence_change"] == pytest.approx(-0.4)
    assert result["progression"]["valence_direction"] == "declining"
    assert result["summary"].startswith("3 readings over 2 min 30 s, mostly calm (33%). Valence fell from +0.40")


def test_empty_insights():
    result = session_insights([])
    assert result["volatility"] is None and result["stability"] is None
    assert result["volatility_level"] is None
    assert result["progression"]["first_third"] is None and result["progression"]["valence_change"] is None
    assert result["peaks"] == [] and result["lows"] == [] and result["transitions"] == []
    assert result["transition_count"] == 0
    assert result["summary"] == "No readings yet, so there is nothing to summarise."


def test_single_reading_insights():
    result = session_insights([reading(0, "angry", -0.5, 0.75)])
    assert result["volatility"] is None and result["stability"] is None
    assert result["progression"]["valence_change"] == 0.0
    assert result["progression"]["valence_direction"] == "steady"
    assert result["peaks"] == result["lows"] == [
        {"timestamp": at(0), "dominant": "angry", "valence": -0.5, "arousal": 0.75}]
    assert result["summary"] == "One reading at 12:00:00 UTC: angry, valence -0.50, arousal +0.75."


def test_insights_are_deterministic():
    assert session_insights(SESSION) == session_insights(list(SESSION))


# ---------------------------------------------------------------------------- collective


WINDOW = (at(0), at(600))
CROWD = [
    reading(60, "happy", 0.6, 0.4, 0.5, user="u1", session="s1"),
    reading(120, "happy", 0.4, 0.2, 0.7, user="u2", session="s2"),
    reading(180, "sad", -0.2, -0.3, 0.3, user="u3", session="s3"),
    reading(240, "neutral", 0.0, 0.1, 0.5, user="u3", session="s3"),
    reading(600, "angry", -0.9, 0.9, 1.0, user="u4", session="s4"),  # at window_end: outside
    reading(-1, "angry", -0.9, 0.9, 1.0, user="u5", session="s5"),   # before the window
]


def test_collective_snapshot_numbers_and_trend():
    snap = collective_snapshot(CROWD, *WINDOW, previous={"mean_valence": 0.1, "mean_arousal": 0.3})
    assert snap["window_start"] == at(0) and snap["window_end"] == at(600)
    assert (snap["reading_count"], snap["active_users"], snap["active_sessions"]) == (4, 3, 3)
    assert snap["hidden"] is False
    assert snap["distribution"]["happy"] == 0.5
    assert snap["distribution"]["sad"] == 0.25 and snap["distribution"]["neutral"] == 0.25
    assert snap["dominant"] == "happy"
    assert snap["mean_valence"] == pytest.approx(0.2)   # (0.6+0.4-0.2+0.0)/4
    assert snap["mean_arousal"] == pytest.approx(0.1)   # (0.4+0.2-0.3+0.1)/4
    assert snap["mean_intensity"] == pytest.approx(0.5)
    assert snap["trend"]["valence_delta"] == pytest.approx(0.1)
    assert snap["trend"]["arousal_delta"] == pytest.approx(-0.2)
    assert snap["trend"]["direction"] == "rising"


@pytest.mark.parametrize(("previous_valence", "direction"), [(0.25, "rising"), (0.5, "steady"),
                                                             (0.75, "falling"), (0.47, "steady")])
def test_collective_trend_threshold(previous_valence, direction):
    readings = [reading(i, "calm", 0.5, 0.0, user=f"u{i}") for i in range(3)]
    snap = collective_snapshot(readings, *WINDOW, previous={"mean_valence": previous_valence, "mean_arousal": 0.0})
    assert snap["trend"]["direction"] == direction


def test_collective_snapshot_hides_breakdown_below_min_users():
    snap = collective_snapshot(CROWD, *WINDOW, previous={"mean_valence": 0.1, "mean_arousal": 0.3}, min_users=4)
    assert snap["hidden"] is True
    assert (snap["reading_count"], snap["active_users"], snap["active_sessions"]) == (4, 3, 3)
    for key in ("distribution", "dominant", "mean_valence", "mean_arousal", "mean_intensity", "trend"):
        assert snap[key] is None


def test_collective_snapshot_without_previous_or_readings():
    assert collective_snapshot(CROWD, *WINDOW)["trend"] is None
    assert collective_snapshot(CROWD, *WINDOW, previous={"mean_valence": None})["trend"] is None
    empty = collective_snapshot([], *WINDOW)
    assert (empty["reading_count"], empty["active_users"], empty["hidden"], empty["distribution"]) == (0, 0, True, None)


def snapshot(hour, minute, users, valence):
    end = datetime(2026, 11, 21, hour, minute, tzinfo=timezone.utc)
    return {"window_end": end, "window_start": end - timedelta(minutes=5), "active_users": users,
            "mean_valence": valence, "mean_arousal": None if valence is None else valence / 2,
            "dominant": None if valence is None else "calm"}


HISTORY = [
    snapshot(9, 0, 3, 0.0), snapshot(9, 30, 5, 0.1), snapshot(10, 0, 8, 0.3), snapshot(10, 30, 6, 0.25),
    snapshot(11, 0, 4, 0.05), snapshot(11, 30, 4, 0.1), snapshot(12, 0, 2, None), snapshot(12, 30, 3, 0.3),
]


def test_collective_insights_numbers():
    result = collective_insights(reversed(HISTORY))
    assert result["snapshot_count"] == 8 and result["visible_snapshot_count"] == 7
    assert result["mean_valence"] == pytest.approx(1.1 / 7)
    assert result["mean_active_users"] == pytest.approx(35 / 8)
    peaks = result["peaks"]
    # 0.3 is reached at 10:00 and 12:30: the earlier one is reported.
    assert peaks["highest_valence"]["timestamp"] == HISTORY[2]["window_end"]
    assert peaks["lowest_valence"]["timestamp"] == HISTORY[0]["window_end"]
    assert peaks["highest_arousal"]["mean_arousal"] == pytest.approx(0.15)
    assert peaks["most_active"]["active_users"] == 8
    # Zigzag, threshold 0.2: 0.0 -> 0.3 (09:00-10:00), 0.3 -> 0.05 (10:00-11:00) confirmed by
    # the 0.25 rise to 12:30, which is the last, open leg.
    swings = [(s["start"].strftime("%H:%M"), s["end"].strftime("%H:%M"), round(s["change"], 6), s["direction"])
              for s in result["mood_swings"]]
    assert swings == [("09:00", "10:00", 0.3, "rising"), ("10:00", "11:00", -0.25, "falling"),
                      ("11:00", "12:30", 0.25, "rising")]
    assert result["busiest_hours"] == [
        {"hour": 10, "mean_active_users": 7.0, "max_active_users": 8, "snapshots": 2},
        {"hour": 9, "mean_active_users": 4.0, "max_active_users": 5, "snapshots": 2},
        {"hour": 11, "mean_active_users": 4.0, "max_active_users": 4, "snapshots": 2},
    ]


def test_wobble_below_threshold_is_no_mood_swing():
    wobble = [snapshot(9, m, 3, v) for m, v in zip(range(0, 50, 10), [0.0, 0.1, 0.0, 0.1, 0.0])]
    assert collective_insights(wobble)["mood_swings"] == []


def test_swing_detected_after_an_undecided_dip():
    # 0.0, -0.1, 0.25: the rise is measured from the -0.1 low, 0.35 >= 0.2.
    series = [snapshot(9, m, 3, v) for m, v in zip((0, 10, 20), [0.0, -0.1, 0.25])]
    (swing,) = collective_insights(series)["mood_swings"]
    assert swing["from_valence"] == -0.1 and swing["to_valence"] == 0.25


def test_empty_collective_insights():
    result = collective_insights([])
    assert result["snapshot_count"] == 0 and result["mean_valence"] is None
    assert all(v is None for v in result["peaks"].values())
    assert result["mood_swings"] == [] and result["busiest_hours"] == []
