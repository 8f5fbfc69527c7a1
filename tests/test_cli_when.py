"""`mood-mirror export --since/--until` times (mood_mirror/when.py)."""
from datetime import datetime, timedelta, timezone

import pytest

from mood_mirror.when import parse_when

ZONE = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=ZONE)


@pytest.mark.parametrize("text, expected", [
    ("now", NOW),
    ("today", datetime(2026, 12, 2, tzinfo=ZONE)),
    ("Yesterday", datetime(2026, 12, 1, tzinfo=ZONE)),
    ("2h", NOW - timedelta(hours=2)),
    ("7d", NOW - timedelta(days=7)),
    ("30m", NOW - timedelta(minutes=30)),
    ("45min", NOW - timedelta(minutes=45)),
    ("2w", NOW - timedelta(weeks=2)),
    ("2026-11-30T14:00:00+00:00", datetime(2026, 11, 30, 14, tzinfo=timezone.utc)),
    ("2026-11-30T14:00Z", datetime(2026, 11, 30, 14, tzinfo=timezone.utc)),
])
def test_relative_and_zoned_times(text, expected):
    assert parse_when(text, NOW) == expected


def test_dates_and_times_without_a_zone_are_local():
    assert parse_when("2026-11-30", NOW).replace(tzinfo=None) == datetime(2026, 11, 30)
    assert parse_when("2026-11-30", NOW).utcoffset() is not None
    assert parse_when("2026-11-30 14:05", NOW).replace(tzinfo=None) == datetime(2026, 11, 30, 14, 5)


@pytest.mark.parametrize("text", ["last tuesday", "", "7", "2 fortnights", "2026-13-01", "-2h"])
def test_anything_else_names_the_accepted_forms(text):
    with pytest.raises(ValueError, match="ISO 8601 .* yesterday, or an age such as 30m, 2h, 7d"):
        parse_when(text, NOW)
