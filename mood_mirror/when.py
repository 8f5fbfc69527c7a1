"""Times given on the command line (`export --since/--until`): ISO 8601 dates and times, and
relative forms, read as the user means them (local time) and sent to the server with a zone."""
import re
from datetime import datetime, time, timedelta

FORMATS_HINT = ("use an ISO 8601 date or time (2026-11-30, 2026-11-30T14:00, 2026-11-30T14:00+01:00), "
                "now, today, yesterday, or an age such as 30m, 2h, 7d or 2w")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
AGE = re.compile(r"(\d+)\s*(m|min|h|d|w)", re.IGNORECASE)


def parse_when(text, now=None):
    """The moment `text` names, as a timezone-aware datetime; ValueError (with the accepted
    forms) when it names none. `now` (aware) is the current local time, for the relative forms."""
    now = now or datetime.now().astimezone()
    value = text.strip().lower()
    midnight = datetime.combine(now.date(), time(), now.tzinfo)
    if value == "now":
        return now
    if value == "today":
        return midnight
    if value == "yesterday":
        return midnight - timedelta(days=1)
    age = AGE.fullmatch(value)
    if age:
        return now - timedelta(**{UNITS[age.group(2)[0]]: int(age.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: {FORMATS_HINT}") from None
    # A time without a zone is the user's local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
