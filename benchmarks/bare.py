"""Tables of the same shape as `segql.events` without segql's triggers: single-event baselines.

`LIKE ... INCLUDING ALL` copies the columns, their defaults (`ts` stamped by `segql.now()`), the
identity, the primary key and the (user_id, name, ts) index, so a bare INSERT into the copy does
everything an INSERT into `segql.events` does except what segql's triggers add.
"""

from __future__ import annotations

import psycopg

SCHEMA = "bench_bare"
EVENTS = f"{SCHEMA}.events"
NOTIFY_CHANNEL = "bench_bare"

CREATE = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE {EVENTS} (LIKE segql.events INCLUDING ALL)",
)
# The same history, so the baseline's index is as deep as segql's; the identity then carries on
# after the copied ids, as segql.events' does.
COPY_HISTORY = (
    f"INSERT INTO {EVENTS} SELECT * FROM segql.events",
    f"SELECT setval(pg_get_serial_sequence('{EVENTS}', 'id'), max(id)) FROM {EVENTS}"
    " HAVING max(id) IS NOT NULL",
)
# The least a hand-built system does to tell another process about an event: one NOTIFY per row
# from a trigger, in the writer's transaction.
NOTIFY_TRIGGER = (
    f"""CREATE FUNCTION {SCHEMA}.notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', NEW.user_id);
    RETURN NULL;
END $$""",
    f"CREATE TRIGGER notify_event AFTER INSERT ON {EVENTS}"
    f" FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.notify_event()",
)


def create_events(url: str, with_history: bool = False, notify: bool = False) -> None:
    """Create the bare events table in the database at `url`, optionally filled and notifying."""
    statements = (
        CREATE + (COPY_HISTORY if with_history else ()) + (NOTIFY_TRIGGER if notify else ())
    )
    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
