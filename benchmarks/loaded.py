"""One database holding the run's events, loaded through segql with 50 segments deployed.

The `state` scenario measures what that load left on disk and `insert` times single events on
top of it. Loading is the costly part (every batch through segql's triggers), so it happens once
per run, in a database kept until the run ends: the `ingest` scenario's 50-segment COPY when
that ran first (it is the same load), else whichever of the two asks first. The table sizes are
taken right after loading, before any scenario writes to the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from benchmarks import data, disk, segments
from benchmarks.harness import Context

SEGMENTS = 50
KEY = "loaded_database"


@dataclass(frozen=True)
class Loaded:
    url: str
    events: int
    segments: int  # deployed before the load (0 when the compiler is not available)
    seconds: float  # the COPY of every batch, commits included
    tables: list[disk.Table]  # as the load left them


def database(ctx: Context) -> Loaded:
    cached = ctx.cached(KEY)
    if cached is None:
        cached = ctx.remember(KEY, _load(ctx))
    return cached  # type: ignore[no-any-return]


def wanted(ctx: Context, n_segments: int | None) -> bool:
    """Whether a load of the run's events with `n_segments` should be kept as this database."""
    return n_segments == SEGMENTS and ctx.cached(KEY) is None


def remember(ctx: Context, url: str, conn: psycopg.Connection, events: int, seconds: float) -> None:
    """Keep a load made elsewhere (see `wanted`) as the run's loaded database."""
    tables = disk.tables(conn)
    conn.commit()
    ctx.remember(KEY, Loaded(url, events, SEGMENTS, seconds, tables))


def _load(ctx: Context) -> Loaded:
    """Profiles, then the segments, then every batch with the clock pinned to its latest event,
    as the `ingest` scenario loads them: state is what arriving events leave, not a backfill's.
    """
    batches = data.event_batches(ctx)
    url = ctx.kept("loaded")
    data.load_profiles(url, ctx)
    deployed = 0 if segments.availability() else SEGMENTS
    segments.deploy_segments(url, deployed)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        data.copy_batches(conn, batches)
        seconds = time.perf_counter() - started
        tables = disk.tables(conn)
        conn.commit()
    ctx.log(f"loaded {batches.events:,} events with {deployed} segments in {seconds:.1f} s")
    return Loaded(url, batches.events, deployed, seconds, tables)


def vacuum(url: str) -> None:
    """VACUUM ANALYZE everything, so autovacuum does not wake up in the middle of a timing."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
