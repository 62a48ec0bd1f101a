"""Row validation for ingest, without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from segql.errors import IngestError
from segql.ingest import (
    BadRow,
    classify,
    csv_value,
    detect_format,
    event_values,
    parse_mapping,
    parse_ts,
    profile_values,
)


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
        ({"user_id": 7.5, "name": "x"}, "user_id must be a string"),
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
    values = event_values({"user_id": "u", "name": "x", "ts": 0, "props": {"a": "é"}}, "jsonl")
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


def test_unknown_keys_are_rejected_with_the_fix() -> None:
    row = {
        "user_id": "h7",
        "name": "purchase",
        "timestamp": "2026-12-01T10:00:00Z",
        "properties": {"amount": 50},
    }
    with pytest.raises(BadRow) as caught:
        classify(row, "events", "jsonl")
    reason = str(caught.value)
    assert "'timestamp', 'properties'" in reason
    assert "'timestamp' -> 'ts'" in reason and "'properties' -> 'props'" in reason
    assert "--map timestamp=ts" in reason


def test_mapped_keys_load() -> None:
    row = {"user_id": "h7", "name": "purchase", "timestamp": "2026-12-01T10:00:00Z", "x": 1}
    mapping = parse_mapping(["timestamp=ts", "x=ignore"])
    kind, values = classify(row, "events", "jsonl", mapping)
    assert kind == "events"
    assert values == ("h7", "purchase", datetime(2026, 12, 1, 10, tzinfo=UTC), "{}")


def test_bad_mapping_is_refused() -> None:
    with pytest.raises(IngestError, match="KEY=FIELD"):
        parse_mapping(["timestamp=time"])


def test_an_event_row_is_no_profile() -> None:
    with pytest.raises(BadRow, match="looks like an event; load events without --profiles"):
        classify({"user_id": "u", "name": "x", "ts": 0, "props": {}}, "profiles", "jsonl")


def test_numeric_user_ids_become_text() -> None:
    assert classify({"user_id": 42, "name": "x"}, "events", "jsonl")[1][0] == "42"
    assert classify({"user_id": 42, "traits": {}}, "profiles", "jsonl")[1][0] == "42"


@pytest.mark.parametrize("kind", ["events", "profiles"])
def test_segment_track_and_identify_are_detected_per_row(kind: str) -> None:
    track = {
        "type": "track",
        "userId": 1001,
        "event": "Order Completed",
        "properties": {"revenue": 20},
        "timestamp": "2026-01-02T03:04:05.000Z",
        "messageId": "m1",
        "context": {"ip": "1.2.3.4"},
    }
    assert classify(track, kind, "jsonl") == (  # type: ignore[arg-type]
        "events",
        ("1001", "Order Completed", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), '{"revenue":20}'),
    )
    identify = {"type": "identify", "anonymousId": "a-1", "traits": {"plan": "pro"}}
    assert classify(identify, kind, "jsonl") == ("profiles", ("a-1", {"plan": "pro"}))  # type: ignore[arg-type]
    untyped = {"userId": "u", "event": "Signed Up"}
    assert classify(untyped, kind, "jsonl")[0] == "events"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "page", "userId": "u", "name": "Home"}, "segql loads track and identify"),
        ({"type": "track", "event": "x"}, "missing userId"),
        ({"type": "track", "userId": "u", "event": "x", "extra": 1}, "unknown key(s) 'extra'"),
        ({"type": "identify", "userId": "u", "traits": 3}, "traits must be a JSON object"),
    ],
)
def test_bad_spec_calls(record: dict[str, object], reason: str) -> None:
    with pytest.raises(BadRow, match=re.escape(reason)):
        classify(record, "events", "jsonl")
