"""Row validation for ingest, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from segql.errors import IngestError
from segql.ingest import BadRow, csv_value, detect_format, event_values, parse_ts, profile_values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        (
            "2024-01-02T03:04:05.5+02:00",
            datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1.5, datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_parse_ts_accepts(value: object, expected: datetime | None) -> None:
    assert parse_ts(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "not ISO 8601"),
        (True, "boolean"),
        ([1], "an array"),
        (1.7e12, "milliseconds"),
        ("2024-13-01", "not ISO 8601"),
    ],
)
def test_parse_ts_rejects(value: object, reason: str) -> None:
    with pytest.raises(BadRow, match=reason):
        parse_ts(value)


def test_parsed_timestamps_are_always_aware() -> None:
    parsed = parse_ts("2024-06-01T12:00:00")
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"name": "x"}, "missing user_id"),
        ({"user_id": "", "name": "x"}, "missing user_id"),
        ({"user_id": "u"}, "missing name"),
        ({"user_id": 7, "name": "x"}, "user_id must be a string"),
        ({"user_id": "u", "name": ["x"]}, "name must be a string"),
        ({"user_id": "u\x00", "name": "x"}, "NUL"),
        ({"user_id": "u", "name": "x", "props": "a"}, "props must be a JSON object"),
        ({"user_id": "u", "name": "x", "props": {"k": ["\x00"]}}, "NUL"),
        ([1, 2], "JSON object"),
        (BadRow("invalid JSON: boom"), "boom"),
    ],
)
def test_event_values_rejects(record: object, reason: str) -> None:
    with pytest.raises(BadRow, match=reason):
        event_values(record, "jsonl")


def test_event_values_from_json() -> None:
    values = event_values(
        {"user_id": "u", "name": "x", "ts": 0, "props": {"a": "é"}, "extra": 1}, "jsonl"
    )
    assert values == ("u", "x", datetime(1970, 1, 1, tzinfo=UTC), '{"a":"é"}')


def test_event_values_from_csv_types_extra_columns() -> None:
    record = {"user_id": "u", "name": "buy", "ts": "", "price": "9.50", "zip": "007", "ok": "TRUE"}
    user_id, name, ts, props = event_values(record, "csv")
    assert (user_id, name, ts) == ("u", "buy", None)
    assert props == '{"price":9.5,"zip":"007","ok":true}'


def test_csv_props_column_holds_json() -> None:
    record = {"user_id": "u", "name": "buy", "props": '{"a": [1]}', "b": "2"}
    assert event_values(record, "csv")[3] == '{"a":[1],"b":2}'


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("1.25", 1.25),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("007", "007"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("12abc", "12abc"),
        (" 1", " 1"),
    ],
)
def test_csv_value(text: str, value: object) -> None:
    assert csv_value(text) == value


def test_profile_values() -> None:
    assert profile_values({"user_id": "u", "traits": {"plan": "pro"}}, "jsonl") == (
        "u",
        {"plan": "pro"},
    )
    assert profile_values({"user_id": "u", "age": "41", "city": "Oslo"}, "csv") == (
        "u",
        {"age": 41, "city": "Oslo"},
    )
    with pytest.raises(BadRow, match="traits must be a JSON object"):
        profile_values({"user_id": "u", "traits": 3}, "jsonl")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("a.jsonl.gz", "jsonl"),
    ],
)
def test_detect_format(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


def test_detect_format_needs_a_known_extension() -> None:
    with pytest.raises(IngestError, match="--format"):
        detect_format(Path("events.txt"))
    assert detect_format(Path("events.txt"), "csv") == "csv"
    with pytest.raises(IngestError, match="unknown format"):
        detect_format(Path("events.txt"), "xml")
