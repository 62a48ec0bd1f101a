"""State on disk: what segql keeps per user after the run's events arrived with 50 segments.

segql's side is the total size (tables, indexes, TOAST) of every state table in schema segql
(see `benchmarks.disk`: everything but events, profiles, the change log and the catalog); the
baseline is the events table itself, the data the state summarises. The details list each table's
size and row count, the ones not counted included.
"""

from __future__ import annotations

from benchmarks import loaded, segments
from benchmarks.harness import Context, Goal, Result

NAME = "state"
GOAL = Goal("≤ 0.6x the events table", max_ratio=0.6)
MB = 2**20


def run(ctx: Context) -> list[Result]:
    db = loaded.database(ctx)
    state = [t for t in db.tables if t.is_state]
    events = next((t for t in db.tables if t.name == "events"), None)
    skipped = segments.availability()
    state_mb = sum(t.bytes for t in state) / MB
    ctx.log(f"state {state_mb:.2f} MB: " + ", ".join(f"{t.name} {t.bytes / MB:.2f}" for t in state))
    return [
        Result(
            NAME,
            f"state tables after loading {db.events:,} events, {db.segments} segments",
            "MB",
            segql=None if skipped else state_mb,
            baseline=events.bytes / MB if events else None,
            goal=GOAL,
            note=skipped or "",
            details={
                "state_tables": {t.name: t.as_json() for t in state},
                "not_counted": {t.name: t.as_json() for t in db.tables if not t.is_state},
                "load_seconds": round(db.seconds, 2),
            },
        )
    ]
