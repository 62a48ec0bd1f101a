"""Relay notify mode: writers skip NOTIFY, the relay announces what committed, none missed."""

from __future__ import annotations

import psycopg

from segql import deploy, relay
from segql.parse import parse_text

SEGMENT = "CREATE SEGMENT carted AS did('cart');"


def _rings(listener: psycopg.Connection, timeout: float = 0.3) -> set[str]:
    return {n.channel for n in listener.notifies(timeout=timeout, stop_after=10)}


def _cart(url: str, user: str) -> psycopg.Connection:
    """An open transaction that made `user` enter; the caller commits it."""
    writer = psycopg.connect(url)
    writer.execute("INSERT INTO segql.events (user_id, name) VALUES (%s, 'cart')", [user])
    return writer


def test_relay_announces_every_committed_change(
    conn: psycopg.Connection, database_url: str
) -> None:
    deploy.deploy(conn, parse_text(SEGMENT, "r.sql"))
    relay.set_notify_mode(conn, "relay")
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url, autocommit=True) as relay_conn,
    ):
        listener.execute("LISTEN segql")
        listener.execute('LISTEN "segql.carted"')
        ringer = relay.Relay(relay_conn)
        ringer.step()
        early = _cart(database_url, "early")  # takes its seq first, commits last
        with _cart(database_url, "late") as late:
            late.commit()
        assert _rings(listener) == set(), "writers must not notify in relay mode"
        assert ringer.step() == 1
        assert _rings(listener) == {"segql", "segql.carted"}
        early.commit()
        early.close()
        assert ringer.step() == 1, "a transaction that committed after a later seq is announced"
        assert _rings(listener) == {"segql", "segql.carted"}
        assert ringer.step() == 0


def test_direct_mode_is_the_default_and_notifies_at_commit(
    conn: psycopg.Connection, database_url: str
) -> None:
    deploy.deploy(conn, parse_text(SEGMENT, "r.sql"))
    assert relay.notify_mode(conn) == "direct"
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN segql")
        with _cart(database_url, "ann") as writer:
            writer.commit()
        assert _rings(listener, timeout=2) == {"segql"}


def test_the_worker_relays_in_relay_mode(conn: psycopg.Connection, database_url: str) -> None:
    """Relay mode needs no process beyond the worker; direct mode gets no second doorbell."""
    import threading

    from segql import worker

    deploy.deploy(conn, parse_text(SEGMENT, "r.sql"))
    with (
        worker.StopEvent() as stop,
        psycopg.connect(database_url, autocommit=True) as listener,
    ):
        listener.execute('LISTEN "segql.carted"')
        thread = threading.Thread(
            target=worker.run_worker,
            args=(database_url,),
            kwargs={"stop_event": stop, "campaigns": False, "relay_interval": 0.02},
        )
        thread.start()
        try:
            with _cart(database_url, "direct") as writer:
                writer.commit()
            assert _rings(listener, timeout=2) == {"segql.carted"}
            assert _rings(listener, timeout=2.5) == set(), "direct mode: only the writer rings"

            relay.set_notify_mode(conn, "relay")
            # The relay looks at the mode once a second: a transaction committed just after
            # the switch, before the relay has seen it, must still be announced.
            with _cart(database_url, "switched") as writer:
                writer.commit()
            assert _rings(listener, timeout=3) == {"segql.carted"}
            with _cart(database_url, "relayed") as writer:
                writer.commit()
            assert _rings(listener, timeout=2) == {"segql.carted"}
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not thread.is_alive()
