"""Alembic environment for segql's own schema.

segql builds the alembic Config in code (segql.schema), so there is no alembic.ini: the database
URL arrives as the `sqlalchemy.url` main option. The version table lives in schema `segql` so a
user's own alembic history in `public` is never touched.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Serialises concurrent `segql init` runs against one database (any constant would do).
MIGRATION_LOCK_KEY = 0x5E6_0001


def run_migrations_online() -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "segql.schema passes sqlalchemy.url"
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                connection.execute(text("CREATE SCHEMA IF NOT EXISTS segql"))
                connection.commit()
                context.configure(
                    connection=connection,
                    version_table_schema="segql",
                    transactional_ddl=True,
                )
                with context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            finally:
                # A failed migration leaves the transaction aborted; the session-level lock
                # outlives the rollback and must still be released.
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("segql migrations run online only; use `segql init`")
run_migrations_online()
