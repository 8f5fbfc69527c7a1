"""Session analytics on crafted readings whose answers are worked out by hand in the comments."""
import random

import pytest

from app.sessions.analytics import distribution, dominant_emotion, session_analytics, session_insights

from helpers import at, reading

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
    # The count decides first: two sad readings beat one happy, though P(happy) is higher on average.
    outvoted = [reading(0, "happy", 0.5, 0.3, probabilities={"happy": 1.0, "sad": 0.0}),
                reading(1, "sad", -0.5, -0.3, probabilities={"sad": 0.4, "happy": 0.6}),
                reading(2, "sad", -0.5, -0.3, probabilities={"sad": 0.4, "happy": 0.6})]
    assert dominant_emotion(outvoted) == "sad"


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
        "No shift between emotions is more frequent than another. "
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
    assert "Most frequent shift: calm to sad (2x)." in result["summary"]
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
