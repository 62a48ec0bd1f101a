"""The one reading of times that users type: every time option of every command goes through it.

A moment is ISO 8601 (`2026-01-31T12:00:00Z`; without a zone it is UTC), `now`, `yesterday`,
`tomorrow`, or a distance from now: `+2h`, `-30m`, `90d ago`, `in 3 days`. A distance (an age,
a window) is a number and a unit: `45s`, `30m`, `12h`, `90d`, `2w`, or spelled out (`2 hours`).
"Now" is the segql clock (segql.now()), so relative moments follow a pinned clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from segql.errors import ConfigError

_UNITS = {
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "h": "hours",
    "hr": "hours",
    "hour": "hours",
    "d": "days",
    "day": "days",
    "w": "weeks",
    "week": "weeks",
}
_DISTANCE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+?)s?$")
_WORDS = {"now": 0, "today": 0, "yesterday": -1, "tomorrow": 1}
EXAMPLES = "2026-01-31T12:00:00Z, now, yesterday, +2h, -30m, '90d ago' or 'in 3 days'"


class TimeError(ConfigError):
    """That is not a time segql can read."""


def parse_distance(text: str) -> timedelta:
    """`90d`, `12h`, `2 weeks`, `30 minutes`: a length of time."""
    found = _distance(text)
    if found is None:
        raise TimeError(f"'{text}' is not a length of time; write e.g. 90d, 12h, 2w, 30m or 45s")
    return found


def _distance(text: str) -> timedelta | None:
    match = _DISTANCE.match(text.strip().lower())
    if not match:
        return None
    unit = _UNITS.get(match.group(2)) or _UNITS.get(match.group(2).rstrip("s"))
    if unit is None:
        return None
    return timedelta(**{unit: float(match.group(1))})


def parse_moment(text: str, now: datetime) -> datetime:
    """A moment as a user types it, relative ones counted from `now` (the segql clock)."""
    cleaned = text.strip().lower()
    if cleaned in _WORDS:
        return now + timedelta(days=_WORDS[cleaned])
    relative = _relative(cleaned)
    if relative is not None:
        return now + relative
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeError(f"'{text}' is not a time; write e.g. {EXAMPLES}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _relative(text: str) -> timedelta | None:
    sign = 1
    if text.startswith(("+", "-")):
        sign, text = (1 if text[0] == "+" else -1), text[1:]
    elif text.endswith(" ago"):
        sign, text = -1, text[: -len(" ago")]
    elif text.startswith("in "):
        text = text[len("in ") :]
    else:
        return None
    found = _distance(text)
    return None if found is None else sign * found


def needs_now(text: str) -> bool:
    """Whether `text` is relative, so that reading it needs the clock."""
    cleaned = text.strip().lower()
    return cleaned in _WORDS or _relative(cleaned) is not None
