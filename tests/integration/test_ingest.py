"""Loading events and profiles into a real database."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import psycopg
import pytest

from segql.errors import IngestError
from segql.ingest import ingest_events, ingest_profiles


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _event(i: int, **extra: object) -> str:
    return json.dumps({"user_id": f"u{i % 97}", "name": "view", "ts": 1_700_000_000 + i, **extra})


def _scalar(conn: psycopg.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    conn.commit()
    assert row is not None
    return row[0]


def test_good_and_bad_rows(conn: psycopg.Connection, tmp_path: Path) -> None:
    lines = [_event(i) for i in range(10_000)]
    lines[10] = '{"user_id": "u1", "name": "view"'  # line 11: truncated JSON
    lines[5000] = json.dumps({"user_id": "u1", "name": "view", "ts": "not a time"})
    lines[9999] = json.dumps({"user_id": "u1", "props": {}})  # line 10000: no name
    path = _write_lines(tmp_path / "events.jsonl", lines)

    result = ingest_events(conn, path, batch_size=1000)

    assert (result.loaded, result.rejected) == (9_997, 3)
    assert _scalar(conn, "SELECT count(*) FROM segql.events") == 9_997
    rejects = [
        json.loads(x) for x in (tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [11, 5001, 10000]
    assert "invalid JSON" in rejects[0]["reason"]
    assert "not ISO 8601" in rejects[1]["reason"]
    assert rejects[2]["reason"] == "missing name"
    assert rejects[2]["raw"] == lines[9999]
    stored = conn.execute("SELECT line, reason, source FROM segql.rejects ORDER BY line").fetchall()
    assert [(line, reason) for line, reason, _ in stored] == [
        (r["line"], r["reason"]) for r in rejects
    ]
    assert stored[0][2] == str(path)


def test_each_batch_is_its_own_transaction(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "e.jsonl", [_event(i) for i in range(95)])
    ingest_events(conn, path, batch_size=10)
    assert _scalar(conn, "SELECT count(DISTINCT xmin::text) FROM segql.events") == 10


def test_missing_ts_uses_the_segql_clock(conn: psycopg.Connection, tmp_path: Path) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = '2030-05-06T07:08:09Z'")
    conn.commit()
    path = _write_lines(tmp_path / "e.ndjson", [json.dumps({"user_id": "u", "name": "x"})])
    ingest_events(conn, path)
    ts = _scalar(conn, "SELECT ts FROM segql.events")
    assert str(ts) == "2030-05-06 07:08:09+00:00"


def test_csv_events(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,name,ts,amount,coupon,first\n"
        "u1,purchase,2024-03-01T10:00:00+01:00,19.90,SPRING,true\n"
        'u2,purchase,1709287200,5,"a,b",false\n'
        "u3,purchase\n",
        encoding="utf-8",
    )
    result = ingest_events(conn, path)
    assert (result.loaded, result.rejected) == (2, 1)
    rows = conn.execute("SELECT user_id, ts, props FROM segql.events ORDER BY user_id").fetchall()
    assert rows[0][0] == "u1" and rows[0][1].isoformat() == "2024-03-01T09:00:00+00:00"
    assert rows[0][2] == {"amount": 19.9, "coupon": "SPRING", "first": True}
    assert rows[1][2] == {"amount": 5, "coupon": "a,b", "first": False}


def test_gzip(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(_event(i) + "\n" for i in range(500))
    result = ingest_events(conn, path, batch_size=128)
    assert (result.loaded, result.rejected) == (500, 0)
    assert result.rejects_path is None
    assert not (tmp_path / "events.jsonl.gz.rejects.jsonl").exists()


def test_server_side_failures_are_isolated_by_bisecting(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("ALTER TABLE segql.events ADD CONSTRAINT no_boom CHECK (name <> 'boom')")
    conn.commit()
    lines = [_event(i) for i in range(1000)]
    for bad in (3, 4, 517):
        lines[bad] = json.dumps({"user_id": "u", "name": "boom"})
    path = _write_lines(tmp_path / "e.jsonl", lines)
    rejects_path = tmp_path / "out" / "bad.jsonl"
    rejects_path.parent.mkdir()

    result = ingest_events(conn, path, batch_size=256, rejects_path=rejects_path)

    assert (result.loaded, result.rejected) == (997, 3)
    rejects = [json.loads(x) for x in rejects_path.read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == [4, 5, 518]
    assert all("no_boom" in r["reason"] for r in rejects)
    assert _scalar(conn, "SELECT count(*) FROM segql.events WHERE name = 'boom'") == 0


def test_errors_that_are_not_about_a_row_stop_the_load(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(
        """CREATE FUNCTION pg_temp.deny() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE insufficient_privilege USING MESSAGE = 'no loading today'; END $$;
           CREATE TRIGGER deny BEFORE INSERT ON segql.events
           FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.deny()"""
    )
    conn.commit()
    path = _write_lines(tmp_path / "e.jsonl", [_event(i) for i in range(10)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ingest_events(conn, path)


def test_refuses_a_connection_inside_a_transaction(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("SELECT 1")
    path = _write_lines(tmp_path / "e.jsonl", [_event(1)])
    with pytest.raises(IngestError, match="commit first"):
        ingest_events(conn, path)


def test_profiles_merge(conn: psycopg.Connection, tmp_path: Path) -> None:
    conn.execute("""SELECT segql.identify('u1', '{"plan": "free", "city": "Oslo"}')""")
    conn.commit()
    path = _write_lines(
        tmp_path / "profiles.jsonl",
        [
            json.dumps({"user_id": "u1", "traits": {"plan": "pro"}}),
            json.dumps({"user_id": "u2", "traits": {"plan": "free", "age": 30}}),
            json.dumps({"user_id": "u2", "traits": {"age": 31}}),  # same batch: later wins
            json.dumps({"user_id": "u3", "traits": "nope"}),
        ],
    )
    result = ingest_profiles(conn, path)
    assert (result.loaded, result.rejected) == (3, 1)
    rows = dict(conn.execute("SELECT user_id, traits FROM segql.profiles").fetchall())
    assert rows == {
        "u1": {"plan": "pro", "city": "Oslo"},
        "u2": {"plan": "free", "age": 31},
    }


def test_profiles_csv(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "profiles.csv"
    path.write_text("user_id,plan,age,vip\nu1,pro,41,true\nu2,free,,false\n", encoding="utf-8")
    result = ingest_profiles(conn, path, batch_size=1)
    assert (result.loaded, result.rejected) == (2, 0)
    rows = dict(conn.execute("SELECT user_id, traits FROM segql.profiles").fetchall())
    assert rows == {
        "u1": {"plan": "pro", "age": 41, "vip": True},
        "u2": {"plan": "free", "vip": False},
    }


def test_file_level_problems_stop_before_loading(conn: psycopg.Connection, tmp_path: Path) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("uid,event\nu1,x\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no user_id, name column; it has: uid, event"):
        ingest_events(conn, csv_path)
    array_path = _write_lines(tmp_path / "e.json", ['[{"user_id": "u", "name": "x"}]'])
    with pytest.raises(IngestError, match="JSON array"):
        ingest_events(conn, array_path)
    assert _scalar(conn, "SELECT count(*) FROM segql.events") == 0


def test_byte_order_mark_and_blank_lines(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"user_id": "u", "name": "x"}\n\n{"user_id": "v", "name": "x"}\n'
    )
    result = ingest_events(conn, path)
    assert (result.loaded, result.rejected) == (2, 0)


def test_segment_calls_load_as_events_and_profiles(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    lines = [
        json.dumps(
            {
                "type": "track",
                "userId": 7,
                "event": "purchase",
                "timestamp": "2026-12-01T10:00:00Z",
                "properties": {"amount": 50},
            }
        ),
        json.dumps({"type": "identify", "userId": 7, "traits": {"plan": "pro"}}),
        json.dumps({"user_id": "h7", "name": "purchase", "timestamp": "2026-12-01T10:00:00Z"}),
    ]
    result = ingest_events(conn, _write_lines(tmp_path / "segment.jsonl", lines))
    assert (result.loaded, result.rejected) == (2, 1)
    assert conn.execute("SELECT user_id, name, ts::text, props FROM segql.events").fetchall() == [
        ("7", "purchase", "2026-12-01 10:00:00+00", {"amount": 50})
    ]
    assert conn.execute("SELECT user_id, traits FROM segql.profiles").fetchall() == [
        ("7", {"plan": "pro"})
    ]
    assert "unknown key(s) 'timestamp'" in result.reject_samples[0].reason


def test_profiles_option_on_an_events_file_loads_no_profiles(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = _write_lines(tmp_path / "events.jsonl", [_event(i) for i in range(20)])
    result = ingest_profiles(conn, path)
    assert (result.loaded, result.rejected) == (0, 20)
    assert "load events without --profiles" in result.reject_samples[0].reason
    assert _scalar(conn, "SELECT count(*) FROM segql.profiles") == 0
