"""Roles: what an application that writes events, a reader of memberships and an operator may do.

- ingest: INSERT/COPY events and profiles, call segql.track/segql.identify; nothing else (the
  write path's functions run as segql's owner, so no rights on internal tables are needed);
- read: the `segments` views, membership, the change log and its history, named feed cursors;
- admin: membership in segql's owner role; deploys switch to it so objects stay owned by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import psycopg
from psycopg import sql

from segql.errors import SegqlError
from segql.sqlfiles import query

Kind = Literal["ingest", "read", "admin"]
KINDS: tuple[str, ...] = get_args(Kind)
_FILE = "grants.sql"


class GrantError(SegqlError):
    """The grant cannot be made."""


def owner(conn: psycopg.Connection) -> tuple[str, str, bool]:
    """segql's owner, the current user, and whether the current user may act as the owner."""
    row = conn.execute(query("owner", _FILE)).fetchone()
    if row is None:
        raise GrantError("segql's schema is not installed here: run `segql init` first")
    return str(row[0]), str(row[1]), bool(row[2])


def grant(conn: psycopg.Connection, kind: Kind, role: str) -> None:
    _apply(conn, f"grant_{kind}", role)


def revoke(conn: psycopg.Connection, kind: Kind, role: str) -> None:
    _apply(conn, f"revoke_{kind}", role)
    if kind != "admin":
        row = conn.execute(query("holds_any", _FILE), {"role": role}).fetchone()
        if row is not None and not row[0]:
            _apply(conn, "revoke_leftovers", role)


def _apply(conn: psycopg.Connection, block: str, role: str) -> None:
    own, _, _ = owner(conn)
    if conn.execute(query("role_exists", _FILE), {"role": role}).fetchone() is None:
        raise GrantError(f"role '{role}' does not exist: create it first (CREATE ROLE ... LOGIN)")
    if role == own:
        raise GrantError(f"'{role}' owns segql and already may do everything")
    statement = sql.SQL(query(block, _FILE)).format(
        role=sql.Identifier(role), owner=sql.Identifier(own)
    )
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        if block != "grant_admin":
            raise
        raise GrantError(
            f"admin is membership in segql's owner role '{own}', which only a role with ADMIN "
            f"OPTION on it may grant (a superuser, or the role that created '{own}'): run "
            f'`segql grant admin {role}` as that role, or GRANT "{own}" TO "{role}"'
        ) from exc


def act_as_owner(conn: psycopg.Connection) -> None:
    """Within the current transaction, create objects as segql's owner (for admin roles)."""
    own, current, member = owner(conn)
    if own != current and member:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(own)))


def revoke_public_execute_sql() -> str:
    return query("public_execute", _FILE)


@contextmanager
def reading_user_data(what: str) -> Iterator[None]:
    """For commands that compute from users' events and traits, which the read role may not
    see: say so and who may, instead of the bare permission error."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise GrantError(
            f"{what} reads users' events and traits, which this role may not see "
            f"({exc.diag.message_primary}): the read role sees memberships, the change log and "
            "the catalog. Run it as segql's owner or as a role given `segql grant admin ROLE`"
        ) from None
