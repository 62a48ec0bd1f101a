"""segql's own schema: migrations run in code, no alembic.ini needed at run time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from segql import db
from segql.sqlfiles import resource_path

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "segql.alembic_version"

# Tables and columns the code relies on. The migration test asserts that upgrading an empty
# database to head yields at least these; extend it when a revision adds something code reads.
EXPECTED_SCHEMA: dict[str, list[str]] = {
    "segql.clock": ["id", "pinned_at"],
    "segql.events": ["id", "user_id", "name", "ts", "props", "received_at"],
    "segql.profiles": ["user_id", "traits", "updated_at"],
    "segql.rejects": ["id", "source", "line", "reason", "raw", "rejected_at"],
    "segql.alembic_version": ["version_num"],
    "segql.users": ["user_id", "first_seen"],
    "segql.segments": [
        "name",
        "version",
        "definition",
        "comment",
        "source",
        "depends_on",
        "full_query",
        "deployed_at",
        "timer_key",
        "tiers",
        "tier_rank",
    ],
    "segql.segment_versions": [
        "name",
        "version",
        "definition",
        "comment",
        "compiled",
        "deployed_at",
    ],
    "segql.deploys": ["id", "deployed_at", "segments", "created", "changed", "dropped", "program"],
    "segql.features": ["id", "key", "spec", "created_at"],
    "segql.feature_state": [
        "feature_id",
        "user_id",
        "cnt",
        "vcnt",
        "sum",
        "min",
        "max",
        "first_ts",
        "last_ts",
        "recent",
        "loc_id",
        "lat",
        "lon",
    ],
    "segql.zones": ["name", "version", "definition", "source", "deployed_at"],
    "segql.members": ["segment", "user_id", "since"],
    "segql.changes": [
        "seq",
        "segment",
        "user_id",
        "kind",
        "at",
        "cause",
        "version",
        "xid",
        "recorded_at",
    ],
    "segql.timers": ["segment", "user_id", "due_at"],
    "segql.deferred": ["user_id", "created_at"],
    "segql.rfm_cutpoints": [
        "score",
        "function",
        "event",
        "prop",
        "within_seconds",
        "filter",
        "cuts",
        "durations",
        "population",
        "computed_at",
        "refreshed_at",
        "compute_sql",
    ],
    "segql.user_groups": ["user_id", "grp", "segments"],
    "segql.settings": ["key", "value"],
    "segql.consumers": [
        "name",
        "segments",
        "base",
        "floor_seq",
        "batch",
        "batch_tx",
        "batch_seq",
        "last_seq",
        "acked_at",
        "created_at",
        "updated_at",
    ],
    "segql.log_prunes": ["id", "pruned_at", "cutoff", "deleted", "forced"],
    "segql.campaigns": [
        "name",
        "version",
        "definition",
        "segment",
        "kind",
        "url",
        "secret",
        "base",
    ],
    "segql.campaign_versions": ["name", "version", "definition", "deployed_at"],
    "segql.models": ["name", "definition", "comment", "horizon_seconds", "fingerprint", "version"],
    "segql.model_readers": ["segment", "model", "version"],
    "segql.model_versions": ["name", "version", "definition", "spec", "report", "clock"],
    "segql.deliveries": [
        "id",
        "campaign",
        "seq",
        "user_id",
        "webhook_id",
        "status",
        "reason",
        "due_at",
        "body",
        "attempts",
    ],
}


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resource_path("migrations")))
    # ConfigParser interpolation treats % specially; URL-encoded socket paths are full of them.
    config.set_main_option("sqlalchemy.url", db.sqlalchemy_url(url).replace("%", "%%"))
    return config


def heads() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(resource_path("migrations")))
    return sorted(script.get_heads())


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    with _driver_errors():
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    with _driver_errors():
        command.downgrade(alembic_config(url), revision)


@contextmanager
def _driver_errors() -> Iterator[None]:
    """Re-raise the psycopg error under SQLAlchemy's wrapper, so the CLI boundary sees one kind."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from exc
        raise


def current(url: str) -> str | None:
    """The revision the database is at, None for a database segql never touched."""
    with db.connect(url, autocommit=True) as conn:
        revisions = current_revisions(conn)
    return ",".join(revisions) if revisions else None


def current_revisions(conn: psycopg.Connection) -> list[str]:
    """Read the version table directly: no alembic import, one round trip."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [VERSION_TABLE]).fetchone()
    if not row or not row[0]:
        return []
    rows = conn.execute(f"SELECT version_num FROM {VERSION_TABLE} ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def is_current(url: str) -> bool:
    with db.connect(url, autocommit=True) as conn:
        return current_revisions(conn) == heads()


def ensure_schema(url: str) -> bool:
    """Bring the database to head; True when migrations ran, False when it already was there.

    Idempotent and safe to run concurrently: env.py holds an advisory lock while migrating.
    """
    if is_current(url):
        return False
    upgrade(url)
    return True
