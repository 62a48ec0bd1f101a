"""Every time option reads times the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segql.times import TimeError, parse_distance, parse_moment

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31 12:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("now", NOW),
        ("yesterday", NOW - timedelta(days=1)),
        ("+2h", NOW + timedelta(hours=2)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("90d ago", NOW - timedelta(days=90)),
        ("2 hours ago", NOW - timedelta(hours=2)),
        ("in 3 days", NOW + timedelta(days=3)),
        ("+1w", NOW + timedelta(weeks=1)),
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["soon", "+2x", "2h", "31/01/2026"])
def test_not_moments(text: str) -> None:
    with pytest.raises(TimeError, match="yesterday, \\+2h"):
        parse_moment(text, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("2 weeks", timedelta(weeks=2))],
)
def test_distances(text: str, expected: timedelta) -> None:
    assert parse_distance(text) == expected


def test_not_a_distance() -> None:
    with pytest.raises(TimeError, match="90d, 12h"):
        parse_distance("ninety days")
