"""CLI command modules and the helpers they share.

Each module in MODULES defines `register(app: typer.Typer) -> None`. To add commands, write a
module and add one line to MODULES.

Inside a command, take `ctx: typer.Context` and use `state(ctx)`:

    def my_command(ctx: typer.Context) -> None:
        st = state(ctx)
        with st.connect() as conn:      # schema brought to head first; autocommit off
            ...
        st.url                          # resolved URL (starts the embedded server if needed)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import typer

from segql import db, schema

MODULES: list[str] = [
    "segql.commands.base",
    "segql.commands.catalog",
    "segql.commands.campaigns",
    "segql.commands.compiler",
    "segql.commands.dashboard",
    "segql.commands.demo",
    "segql.commands.estimate",
    "segql.commands.feed",
    "segql.commands.models",
    "segql.commands.rebuild",
    "segql.commands.relay",
    "segql.commands.rfm",
    "segql.commands.synth",
    "segql.commands.trust",
    "segql.commands.worker",
]


@dataclass
class AppState:
    """What the global options resolved to; lives in the typer context object."""

    database_url_option: str | None = None
    debug: bool = False
    _url: str | None = field(default=None, repr=False)
    _schema_checked: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """The database URL; resolving it may start the embedded server."""
        if self._url is None:
            url = db.resolve_url(self.database_url_option)
            db.check_url(url, self.url_source)
            self._url = url
        return self._url

    @property
    def url_source(self) -> str:
        return db.url_source(self.database_url_option)

    def ensure_schema(self) -> bool:
        """Migrate to head once per process; True when migrations ran."""
        if self._schema_checked:
            return False
        with self._explained():
            ran = schema.ensure_schema(self.url)
        self._schema_checked = True
        return ran

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """A failure to connect says which URL, where it came from, and what to do."""
        try:
            yield
        except psycopg.OperationalError as exc:
            if exc.sqlstate is not None:
                raise
            raise db.connect_error(exc, self.url, self.url_source) from None

    @contextmanager
    def connect(
        self, *, autocommit: bool = False, ensure_schema: bool = True
    ) -> Iterator[psycopg.Connection]:
        """A connection that is closed on exit (committed if the block succeeds)."""
        if ensure_schema:
            self.ensure_schema()
        with self._explained():
            conn = db.connect(self.url, autocommit=autocommit)
        with conn:
            yield conn


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(name).register(app)
