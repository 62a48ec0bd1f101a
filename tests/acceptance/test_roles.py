"""Least privilege: an ordinary database owner runs everything; `segql grant` gives ingest, read
and admin roles their part and nothing else; nothing a user creates hijacks a generated function."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from owned_site import Site, site

from segql import grants, schema, verify
from segql.deploy import deploy
from segql.models import store
from segql.models.parse import ModelDialect
from segql.models.publish import publish
from segql.parse import parse_text

SEGMENTS = """
CREATE SEGMENT buyers AS event_count('purchase') >= 2;
CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');
CREATE SEGMENT pro AS plan = 'pro';
"""
T0 = "2026-01-01T00:00:00Z"


@pytest.fixture
def owned(server_url: str, tmp_path: Path) -> Iterator[Site]:
    with site(server_url, tmp_path / "home") as s:
        # Set up in-process as the owner; the tests run the CLI for what they check.
        schema.upgrade(s.url())
        with psycopg.connect(s.url()) as conn:
            conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0])
            deploy(conn, parse_text(SEGMENTS))
        yield s


def grant(s: Site, kind: grants.Kind, role: str, revoke: bool = False) -> None:
    with psycopg.connect(s.url()) as conn:
        (grants.revoke if revoke else grants.grant)(conn, kind, role)


def refused(conn: psycopg.Connection, statement: str, *args: object) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement, list(args) or None)


def members(s: Site, segment: str) -> set[str]:
    with s.connect() as conn:
        rows = conn.execute("SELECT user_id FROM segql.members WHERE segment = %s", [segment])
        return {r[0] for r in rows}


def test_an_ordinary_owner_runs_every_command(owned: Site, tmp_path: Path) -> None:
    with owned.connect() as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False,)
    events = tmp_path / "events.jsonl"
    lines = [
        {"user_id": "a", "name": "purchase", "ts": "2025-12-31T23:00:00Z"},
        {"user_id": "a", "name": "purchase", "ts": "2025-12-31T23:10:00Z"},
        {"user_id": "b", "name": "add_to_cart", "ts": "2025-12-31T23:30:00Z"},
    ]
    events.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps({"user_id": "c", "traits": {"plan": "pro"}}) + "\n")
    for args in (("ingest", str(events)), ("ingest", "--profiles", str(profiles))):
        done = owned.cli(*args)
        assert done.returncode == 0, done.stderr
    assert members(owned, "buyers") == {"a"} and members(owned, "carted") == {"b"}
    assert members(owned, "pro") == {"c"}
    listened = owned.cli("listen", "--since", "0", "--timeout", "2")
    assert listened.returncode == 0, listened.stderr
    assert {json.loads(x)["user_id"] for x in listened.stdout.splitlines()} == {"a", "b", "c"}
    assert owned.cli("clock", "set", "2026-01-01T00:40:00Z", "--no-tick").returncode == 0
    _run_worker_until(owned, lambda: members(owned, "carted") == set())
    for args in (("verify",), ("why", "carted", "b"), ("drop", "pro")):
        done = owned.cli(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)


def _run_worker_until(s: Site, condition: object, wait: float = 30) -> None:
    env_cmd = [sys.executable, "-m", "segql", "worker", "--quiet"]
    import os

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SEGQL_DATABASE_URL"] = s.url()
    env["SEGQL_HOME"] = str(s.home)
    proc = subprocess.Popen(env_cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + wait
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, "the worker did not apply the timer"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_ingest_may_write_events_and_nothing_else(owned: Site, tmp_path: Path) -> None:
    app = owned.role("ingest")
    grant(owned, "ingest", app)
    with owned.connect(app) as conn:
        conn.execute("INSERT INTO segql.events (user_id, name) VALUES ('a', 'purchase')")
        conn.execute("SELECT segql.track('a', 'purchase')")
        conn.execute("""SELECT segql.identify('c', '{"plan": "pro"}')""")
        with conn.cursor().copy("COPY segql.events (user_id, name) FROM STDIN") as copy:
            copy.write_row(["b", "add_to_cart"])
        refused(conn, "SELECT * FROM segql.members")
        refused(conn, "SELECT * FROM segments.buyers")
        refused(conn, "SELECT * FROM segql.changes")
        refused(conn, "SELECT user_id FROM segql.events")
        refused(conn, "INSERT INTO segql.members VALUES ('buyers', 'x', now())")
        refused(
            conn,
            "INSERT INTO segql.changes (segment, user_id, kind, at, cause, version) "
            "VALUES ('buyers', 'x', 'enter', now(), 'event', 1)",
        )
        refused(conn, "UPDATE segql.clock SET pinned_at = now()")
        refused(conn, "SELECT segql.tick()")
        refused(conn, "SELECT segql.s_buyers_v1(ARRAY['x'], 'event')")
        refused(conn, "DELETE FROM segql.events")
    assert members(owned, "buyers") == {"a"} and members(owned, "carted") == {"b"}
    assert members(owned, "pro") == {"c"}
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps({"user_id": "c", "traits": {"plan": "free"}}) + "\n")
    loaded = owned.cli("ingest", "--profiles", str(profiles), user=app)
    assert loaded.returncode == 0, loaded.stderr
    assert members(owned, "pro") == set()
    # A history load (more than one batch) is evaluated at its end by the ingest role too.
    history = tmp_path / "history.jsonl"
    history.write_text(
        "".join(json.dumps({"user_id": f"h{i % 5}", "name": "purchase"}) + "\n" for i in range(10))
    )
    loaded = owned.cli("ingest", "--batch-size", "4", str(history), user=app)
    assert loaded.returncode == 0, loaded.stderr
    assert "Evaluated segments once for 5 user(s)" in loaded.stdout
    assert {f"h{i}" for i in range(5)} <= members(owned, "buyers")
    grant(owned, "ingest", app, revoke=True)
    with owned.connect(app) as conn:
        refused(conn, "INSERT INTO segql.events (user_id, name) VALUES ('a', 'purchase')")


def test_read_may_read_memberships_and_the_log_only(owned: Site) -> None:
    reader = owned.role("read")
    assert owned.cli("grant", "read", reader).returncode == 0
    with owned.connect() as conn:
        conn.execute("SELECT segql.track('a', 'purchase'), segql.track('a', 'purchase')")
    with owned.connect(reader) as conn:
        assert conn.execute("SELECT user_id FROM segments.buyers").fetchall() == [("a",)]
        assert conn.execute("SELECT count(*) FROM segql.changes").fetchone() == (1,)
        refused(conn, "INSERT INTO segql.events (user_id, name) VALUES ('a', 'purchase')")
        refused(conn, "SELECT segql.track('a', 'purchase')")
        refused(conn, "DELETE FROM segql.members")
        refused(conn, "UPDATE segql.clock SET pinned_at = now()")
        refused(conn, "SELECT segql.tick()")
    listened = owned.cli("listen", "--since", "0", "--timeout", "1", user=reader)
    assert listened.returncode == 0, listened.stderr
    assert json.loads(listened.stdout.splitlines()[0])["user_id"] == "a"
    # why computes from the user's events, which read may not see: it says who may.
    explained = owned.cli("why", "buyers", "a", user=reader)
    assert explained.returncode == 1
    assert "segql grant admin" in explained.stderr, explained.stderr


def test_read_may_see_a_models_catalog_and_readers_not_its_inputs(owned: Site) -> None:
    # As `segql train` stores them: six decimals.
    term = {"weight": "2.000000", "condition": "did('purchase')"}
    spec = {"intercept": "-1.000000", "terms": [term]}
    text = """CREATE MODEL buys PREDICT did('purchase') WITHIN '30 days';
              CREATE SEGMENT likely AS score('buys') >= 0.5;"""
    with psycopg.connect(owned.url()) as conn:
        deploy(conn, parse_text(text, "m.sql", ModelDialect))
        conn.execute("SELECT segql.track('a', 'purchase'), segql.track('b', 'view')")
        publish(conn, store.get(conn, "buys").model, spec, {"holdout_auc": 0.7})
    reader = owned.role("read")
    assert owned.cli("grant", "read", reader).returncode == 0
    listed = owned.cli("models", user=reader)
    assert listed.returncode == 0, listed.stderr
    assert "buys: " in listed.stdout and "v1" in listed.stdout
    with owned.connect(reader) as conn:
        assert conn.execute("SELECT user_id FROM segments.likely").fetchall() == [("a",)]
        refused(conn, "DELETE FROM segql.model_versions")
        refused(conn, "SELECT * FROM segql.events")
    for args in (("scores", "buys", "--csv"), ("why", "buys", "a"), ("why", "likely", "a")):
        done = owned.cli(*args, user=reader)
        assert done.returncode == 1, (args, done.stdout)
        assert "segql grant admin" in done.stderr, (args, done.stderr)
    admin = owned.role("admin")
    assert owned.cli("grant", "admin", admin, user=owned.superuser).returncode == 0
    scored = owned.cli("scores", "buys", "--csv", user=admin)
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines() == ["user_id,score", "a,0.731059", "b,0.268941"]


def test_admin_deploys_as_the_owner(owned: Site, tmp_path: Path) -> None:
    operator = owned.role("admin")
    # Membership in the owner role takes ADMIN OPTION on it: the owner alone cannot hand it
    # out, the role that created it (here a superuser) can, and says so when it cannot.
    denied = owned.cli("grant", "admin", operator)
    assert denied.returncode == 1 and "ADMIN OPTION" in denied.stderr, denied.stderr
    done = owned.cli("grant", "admin", operator, user=owned.superuser)
    assert done.returncode == 0, done.stderr
    changed = tmp_path / "changed.sql"
    changed.write_text("CREATE SEGMENT buyers AS event_count('purchase') >= 3;\n")
    done = owned.cli("deploy", str(changed), user=operator)
    assert done.returncode == 0, done.stderr
    assert owned.cli("drop", "pro", user=operator).returncode == 0
    with owned.connect() as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(p.proowner) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'segql'"
        ).fetchall()
    assert owners == [(owned.owner,)]
    again = tmp_path / "again.sql"
    again.write_text("CREATE SEGMENT buyers AS event_count('purchase') >= 4;\n")
    with psycopg.connect(owned.url()) as conn:
        deploy(conn, parse_text(again.read_text()))


def test_generated_functions_run_as_the_owner_with_a_pinned_path(owned: Site) -> None:
    with owned.connect() as conn:
        rows = conn.execute(
            "SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'segql' AND p.proname ~ '^(p[0-9]+_|s_)|^tick$'"
        ).fetchall()
    assert len(rows) >= 8
    for name, definer, config in rows:
        assert definer, name
        assert "search_path=pg_catalog, segql, pg_temp" in config, (name, config)


def test_objects_in_public_cannot_hijack_the_write_path(owned: Site) -> None:
    app = owned.role("ingest")
    grant(owned, "ingest", app)
    with owned.connect() as conn:
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{app}"')
    with owned.connect(app) as conn:
        conn.execute("CREATE TABLE public.hijacked (who text)")
        conn.execute("GRANT INSERT ON public.hijacked TO PUBLIC")
        # Same signatures as the built-ins the generated code calls, first on the path.
        conn.execute(
            "CREATE FUNCTION public.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO public.hijacked VALUES (current_user); "
            "RETURN a OPERATOR(pg_catalog.=) b; END $$"
        )
        conn.execute(
            "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq)"
        )
        conn.execute(
            "CREATE FUNCTION public.cardinality(anyarray) RETURNS integer LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN 1; END $$"
        )
        conn.execute("CREATE TABLE public.members (segment text, user_id text, since timestamptz)")
        conn.execute("SET search_path = public, pg_catalog, segql")
        conn.execute(
            "INSERT INTO segql.events (user_id, name) VALUES ('a', 'purchase'), ('a', 'purchase')"
        )
        conn.execute("SELECT segql.track('b', 'add_to_cart')")
        conn.execute("""SELECT segql.identify('c', '{"plan": "pro"}')""")
        assert conn.execute("SELECT * FROM public.hijacked").fetchall() == []
        assert conn.execute("SELECT count(*) FROM public.members").fetchone() == (0,)
    assert members(owned, "buyers") == {"a"} and members(owned, "carted") == {"b"}
    assert members(owned, "pro") == {"c"}
    with psycopg.connect(owned.url()) as conn:
        assert verify.verify(conn).clean
