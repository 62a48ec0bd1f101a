"""What scenarios share: the scale, the result type, scratch databases and the generated data."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from segql import db, schema


@dataclass(frozen=True)
class Scale:
    name: str
    events: int  # events COPYed per ingest measurement
    users: int
    segment_counts: tuple[int, ...]  # deployed segments for the segql side of ingest
    round_trips: int  # INSERT -> notification round trips for latency
    writer_threads: tuple[int, ...]
    writer_seconds: float  # how long each writer measurement runs
    writer_segments: int  # segments deployed for the segql side of writers
    batch_size: int = 10_000  # events per COPY; each batch is one transaction
    # CHECKPOINT before timing COPY, so setup writes are not flushed during the measurement. It
    # flushes the whole cluster (seconds on a busy shared server) and buys nothing at smoke scale.
    checkpoint: bool = True


SCALES: dict[str, Scale] = {
    # Small enough for CI: the whole run must finish well inside a minute. Its writers keep
    # warm connections to three databases at once, so 16 (48 connections) leaves room beside
    # the other clients of a server at the default max_connections of 100, as in CI's tests.
    "smoke": Scale(
        "smoke", 20_000, 1_000, (0, 10, 50), 100, (1, 8, 16), 1.0, 50, 5_000, checkpoint=False
    ),
    "small": Scale("small", 1_000_000, 50_000, (0, 10, 50), 2_000, (1, 8, 32), 10.0, 50),
    "full": Scale("full", 10_000_000, 500_000, (0, 10, 50), 10_000, (1, 8, 32), 30.0, 50),
}


@dataclass(frozen=True)
class Goal:
    """What counts as good enough, in words for the table and as a check."""

    text: str
    min_ratio: float | None = None  # segql / baseline must be at least this
    max_segql: float | None = None  # segql's own figure must be at most this
    max_ratio: float | None = None  # segql / baseline must be at most this

    def met(self, result: Result) -> bool | None:
        if self.min_ratio is not None:
            ratio = result.ratio
            return None if ratio is None else ratio >= self.min_ratio
        if self.max_ratio is not None:
            ratio = result.ratio
            return None if ratio is None else ratio <= self.max_ratio
        if self.max_segql is not None:
            return None if result.segql is None else result.segql <= self.max_segql
        return None


@dataclass
class Result:
    """One row of the table: a segql figure and the baseline measured beside it."""

    scenario: str
    case: str
    unit: str
    segql: float | None = None
    baseline: float | None = None
    goal: Goal | None = None
    # Shown instead of the segql figure when there is none: why it was not measured.
    note: str = ""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.segql is None or not self.baseline:
            return None
        return self.segql / self.baseline

    @property
    def met(self) -> bool | None:
        return self.goal.met(self) if self.goal else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = self.goal.text if self.goal else None
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


def not_yet_measured(scenario: str, case: str, unit: str, needs: str, goal: str) -> Result:
    """A row for a measurement that waits on a part of segql that does not exist yet."""
    return Result(scenario, case, unit, goal=Goal(goal), note=f"not yet measured: needs {needs}")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class Context:
    """Handed to every scenario: where the server is, the scale, and scratch databases."""

    def __init__(self, server_url: str, scale: Scale, workdir: Path, seed: int = 1) -> None:
        self.server_url = server_url
        self.scale = scale
        self.workdir = workdir
        self.seed = seed
        self._token = uuid.uuid4().hex[:8]
        self._template: str | None = None
        self._cache: dict[str, Any] = {}
        self._kept = ExitStack()

    def log(self, message: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)

    def cached(self, key: str) -> Any:
        return self._cache.get(key)

    def remember(self, key: str, value: Any) -> Any:
        self._cache[key] = value
        return value

    @contextmanager
    def scratch(self, label: str) -> Iterator[str]:
        """A fresh database migrated to head, dropped on exit; yields its URL.

        Migrating once into a template and cloning it per scenario keeps a scratch database to a
        fraction of a second, so every measurement can start from an empty, identical schema.
        """
        name = f"bench_{label}_{self._token}"[:63]
        template = self._ensure_template()
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        try:
            yield db.with_database(self.server_url, name)
        finally:
            self._drop(name)

    def kept(self, label: str) -> str:
        """A scratch database that stays until the run ends, for setup several scenarios share."""
        return self._kept.enter_context(self.scratch(label))

    def close(self) -> None:
        self._kept.close()
        if self._template is not None:
            self._drop(self._template)
            self._template = None

    def _ensure_template(self) -> str:
        if self._template is None:
            name = f"bench_template_{self._token}"
            self._admin(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
            self._template = name
            schema.upgrade(db.with_database(self.server_url, name))
        return self._template

    def _drop(self, name: str) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(statement)
