"""Quiet hours: a delivery due inside the window, in the user's own time zone, waits for its end.

The zone is the user's `timezone` trait (an IANA name such as 'Europe/Paris'); without one, or
with a name the zone database does not know, UTC. Wall-clock times are turned into instants by
`zoneinfo`, so a window that spans a daylight-saving change ends at the right instant: 08:00 on
the morning the clocks go forward is one hour earlier in UTC than the morning before.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: object) -> tzinfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def release(due: datetime, tz: tzinfo, window: tuple[time, time]) -> datetime:
    """`due`, or the end of the quiet window that holds it."""
    start, end = window
    local = due.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= now < end
        end_day = local.date()
    else:  # the window spans midnight, e.g. 22:00 to 08:00
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return due
    # A wall-clock time skipped by a spring-forward change reads (fold=0) with the offset before
    # the change, which lands just after it: still the first moment the window has ended.
    ended = datetime.combine(end_day, end, tzinfo=tz)
    return max(due, ended.astimezone(UTC))
