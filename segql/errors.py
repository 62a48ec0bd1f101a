"""One exception base for everything a user can act on.

Each subclass's docstring is its default message; pass a more specific message when there is one.
psycopg errors are translated into `DatabaseError` in exactly one place: the CLI boundary
(`segql.cli.main`), through `from_psycopg` below.
"""

from __future__ import annotations

import psycopg


class SegqlError(Exception):
    """segql failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class ConfigError(SegqlError):
    """The configuration is invalid."""


class EmbeddedServerError(SegqlError):
    """The embedded PostgreSQL server could not be started."""


class SchemaError(SegqlError):
    """The database schema is not what segql expects. Run `segql init`."""


class IngestError(SegqlError):
    """The input file cannot be loaded."""


class DatabaseError(SegqlError):
    """The database reported an error."""


def from_psycopg(exc: psycopg.Error) -> DatabaseError:
    """Turn a driver error into a one-line message that says what the server said."""
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return DatabaseError(f"cannot reach the database: {first_line(exc)}")
    diag = exc.diag
    parts = [diag.message_primary or first_line(exc)]
    if diag.message_detail:
        parts.append(f"({diag.message_detail})")
    if diag.message_hint:
        parts.append(f"Hint: {diag.message_hint}")
    if exc.sqlstate:
        parts.append(f"[SQLSTATE {exc.sqlstate}]")
    return DatabaseError(" ".join(parts))


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
