"""Ordinary (non-superuser) roles and databases for the least-privilege tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass
class Site:
    """A database owned by an ordinary role (LOGIN CREATEDB, no superuser), plus other roles."""

    server: str
    owner: str
    database: str
    home: Path
    roles: list[str] = field(default_factory=list)

    @property
    def superuser(self) -> str:
        """The role the test server was reached as: the one that created the others."""
        return str(conninfo_to_dict(self.server).get("user") or "postgres")

    def url(self, user: str | None = None) -> str:
        return make_conninfo(self.server, user=user or self.owner, dbname=self.database)

    def connect(self, user: str | None = None) -> psycopg.Connection:
        return psycopg.connect(self.url(user), autocommit=True)

    def cli(
        self, *args: str, user: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SEGQL_DEBUG")}
        env["SEGQL_DATABASE_URL"] = self.url(user)
        env["SEGQL_HOME"] = str(self.home)
        return subprocess.run(
            [sys.executable, "-m", "segql", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def role(self, kind: str) -> str:
        name = f"segql_{kind}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        self.roles.append(name)
        return name


@contextmanager
def site(server: str, home: Path) -> Iterator[Site]:
    """A fresh owner role creates its own database, as on managed Postgres."""
    owner = f"segql_owner_{uuid.uuid4().hex[:8]}"
    database = f"segql_owned_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(owner)))
    the_site = Site(server, owner, database, home)
    with psycopg.connect(make_conninfo(server, user=owner), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield the_site
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            for role in [*the_site.roles, owner]:
                # Default privileges and grants elsewhere would keep the role alive.
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
