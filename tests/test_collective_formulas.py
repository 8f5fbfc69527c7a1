"""The collective mood's formulas on crafted readings whose answers are worked out by hand in
the comments. A snapshot is computed from running totals (app/readings/rollups.py keeps them
in Redis); `snapshot_of` sums crafted readings the same way."""
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from app.collective.formulas import collective_insights, collective_snapshot_from_totals

from helpers import at, reading


def snapshot_of(readings, window_start, window_end, previous=None, min_users=3):
    """The snapshot of the readings timed in [window_start, window_end), from their totals."""
    totals = {"count": 0, "users": set(), "sessions": set(), "dominant_counts": Counter(),
              "valence": 0.0, "arousal": 0.0, "intensity": 0.0, "probabilities": Counter()}
    for r in readings:
        if not window_start <= r["timestamp"] < window_end:
            continue
        totals["count"] += 1
        totals["users"].add(r["user_id"])
        totals["sessions"].update([r["session_id"]] if "session_id" in r else [])
        totals["dominant_counts"][r["dominant"]] += 1
        for key in ("valence", "arousal", "intensity"):
            totals[key] += r[key]
        totals["probabilities"].update(r["probabilities"])
    return collective_snapshot_from_totals(totals, window_start, window_end, previous, min_users)


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
    snap = snapshot_of(CROWD, *WINDOW, previous={"mean_valence": 0.1, "mean_arousal": 0.3})
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
    snap = snapshot_of(readings, *WINDOW, previous={"mean_valence": previous_valence, "mean_arousal": 0.0})
    assert snap["trend"]["direction"] == direction


def test_collective_snapshot_hides_breakdown_below_min_users():
    snap = snapshot_of(CROWD, *WINDOW, previous={"mean_valence": 0.1, "mean_arousal": 0.3}, min_users=4)
    assert snap["hidden"] is True
    assert (snap["reading_count"], snap["active_users"], snap["active_sessions"]) == (4, 3, 3)
    for key in ("distribution", "dominant", "mean_valence", "mean_arousal", "mean_intensity", "trend"):
        assert snap[key] is None


def test_collective_snapshot_without_previous_or_readings():
    assert snapshot_of(CROWD, *WINDOW)["trend"] is None
    assert snapshot_of(CROWD, *WINDOW, previous={"mean_valence": None})["trend"] is None
    empty = snapshot_of([], *WINDOW)
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
