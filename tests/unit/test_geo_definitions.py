"""Bad zones and geo calls are errors at their line and column, with a fix."""

from __future__ import annotations

import pytest

from segql.check import check
from segql.diagnostics import DefinitionError
from segql.parse import parse_text


@pytest.mark.parametrize(
    "text, problem, column",
    [
        ("CREATE ZONE z AS POLYGON ((2 48, 3 48));", "at least 3 distinct points", 28),
        ("CREATE ZONE z AS POLYGON ((2 48, 3 48, 2 48));", "at least 3 distinct points", 28),
        ("CREATE ZONE z AS POLYGON ((2 48, 3 91, 2 49));", "latitude 91 is out of range", 36),
        ("CREATE ZONE z AS POLYGON ((2 48, 181 48, 2 49));", "longitude 181 is out", 34),
        ("CREATE ZONE z AS CIRCLE (48, 2, -1);", "radius -1 is negative", 33),
        ("CREATE ZONE z AS CIRCLE (-95, 2, 1);", "latitude -95 is out of range", 26),
        ("CREATE SEGMENT s AS in_zone('nowhere');", "unknown zone 'nowhere'", 29),
        ("CREATE SEGMENT s AS distance_km(48, 200) < 1;", "longitude 200 is out", 37),
    ],
)
def test_bad_zones_are_errors_at_their_place(text: str, problem: str, column: int) -> None:
    with pytest.raises(DefinitionError) as err:
        check(parse_text(text, "bad.sql"))
    message = str(err.value)
    assert problem in message
    assert f"bad.sql:1:{column}" in message
