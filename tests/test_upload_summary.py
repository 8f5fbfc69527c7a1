"""The breakdown of an upload's result (app/analysis/summary.py): shares of windows, and mixed."""
import pytest

from app.analysis.summary import breakdown


def test_thirds_are_mixed_and_shares_count_windows():
    result = breakdown(["angry"] * 3 + ["sad"] * 3 + ["happy"] * 3)
    assert result["mixed"] is True
    assert result["distribution"]["angry"] == pytest.approx(1 / 3)
    assert sum(result["distribution"].values()) == pytest.approx(1)
    assert result["top"] == "happy"  # a tie goes to the first in the model's class order


def test_more_than_half_dominates_and_exactly_half_does_not():
    assert breakdown(["angry"] * 6 + ["sad"] * 4) == {
        "distribution": pytest.approx({"neutral": 0, "calm": 0, "happy": 0, "sad": 0.4, "angry": 0.6, "fearful": 0,
                                       "disgust": 0, "surprised": 0}),
        "top": "angry", "mixed": False}
    assert breakdown(["angry"] * 5 + ["sad"] * 5)["mixed"] is True


def test_no_windows_and_silence_are_not_counted():
    assert breakdown([])["top"] is None
    assert breakdown(["silence", "calm"])["distribution"]["calm"] == 1.0
