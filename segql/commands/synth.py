"""`segql generate`: a synthetic shop's users and events, into files or into the database."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from segql import synth, times
from segql.commands import state
from segql.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


@dataclass(frozen=True)
class Plan:
    events: int
    users: int
    seed: int
    start: datetime
    end: datetime
    batch_size: int
    lifecycle: bool = False


def generate(
    ctx: typer.Context,
    events: int = typer.Option(100_000, "--events", "-n", min=0, help="Exact number of events."),
    users: int | None = typer.Option(
        None,
        "--users",
        "-u",
        min=1,
        help="Number of users.",
        show_default="one per 20 events",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same data."),
    out: Path | None = typer.Option(
        None,
        "--out",
        file_okay=False,
        help="Write events.jsonl and profiles.jsonl (the `segql ingest` format) into this folder.",
    ),
    into_db: bool = typer.Option(
        False, "--into-db", help="Load into segql.events and segql.profiles with COPY instead."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the files --out would write."),
    end: str | None = typer.Option(
        None,
        "--end",
        help="Time of the last possible event, ISO 8601, UTC when no zone is given; default now.",
    ),
    days: float = typer.Option(30.0, "--days", min=0.001, help="Days of history before --end."),
    batch_size: int = typer.Option(
        10_000, "--batch-size", min=1, help="Events per COPY, each committed (with --into-db)."
    ),
    lifecycle: bool = typer.Option(
        False,
        "--lifecycle",
        help="Users join, churn and buy at their own latent rates (for training models).",
    ),
) -> None:
    """Generate a synthetic shop: profiles and a realistic, reproducible event stream."""
    if (out is None) == (not into_db):
        raise ConfigError("choose exactly one of --out DIR or --into-db")
    if out is not None and not force:
        _refuse_overwrite(out)
    end_at = _parse_end(end)
    plan = Plan(
        events=events,
        users=users or max(1, events // 20),
        seed=seed,
        start=end_at - timedelta(days=days),
        end=end_at,
        batch_size=batch_size,
        lifecycle=lifecycle,
    )
    started = time.perf_counter()
    with _progress(plan.events) as advance:
        if out is not None:
            n_events, n_profiles = synth.write_jsonl(
                out,
                plan.events,
                plan.users,
                plan.seed,
                plan.start,
                plan.end,
                on_batch=advance,
                with_lifecycle=plan.lifecycle,
            )
            target = str(out)
        else:
            n_events, n_profiles = _load(ctx, plan, advance)
            target = "the database"
    _summary(plan, n_events, n_profiles, target, time.perf_counter() - started)


def _refuse_overwrite(out: Path) -> None:
    existing = [p.name for p in (out / "events.jsonl", out / "profiles.jsonl") if p.exists()]
    if existing:
        raise ConfigError(
            f"{out} already holds {' and '.join(existing)}; pass --force to overwrite, or "
            "choose another --out folder"
        )


def _parse_end(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return times.parse_moment(value, datetime.now(UTC))
    except times.TimeError as exc:
        raise typer.BadParameter(exc.message, param_hint="--end") from None


def _load(ctx: typer.Context, plan: Plan, advance: Callable[[int], None]) -> tuple[int, int]:
    with state(ctx).connect() as conn:
        profiles = synth.copy_profiles(
            conn, synth.generate_profiles(plan.users, plan.seed, plan.end)
        )
        rows = synth.event_rows(
            plan.events, plan.users, plan.seed, plan.start, plan.end, plan.lifecycle
        )
        n_events = synth.copy_event_rows(conn, rows, plan.batch_size, on_batch=advance)
    return n_events, profiles


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; nothing when piped, where only the summary is wanted."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TimeRemainingColumn,
    )

    columns = (BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress("[progress.description]{task.description}", *columns, transient=True) as bar:
        task = bar.add_task("events", total=total)
        yield lambda n: bar.advance(task, n)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _summary(plan: Plan, n_events: int, n_profiles: int, target: str, seconds: float) -> None:
    rate = n_events / seconds if seconds > 0 else 0.0
    typer.echo(
        f"Generated {_count(n_events, 'event')} and {_count(n_profiles, 'profile')} into {target} "
        f"(seed {plan.seed}, {synth.iso(plan.start)} to {synth.iso(plan.end)}) "
        f"in {seconds:.1f}s, {rate:,.0f} events/s"
    )
