"""Segment commands: compile, deploy, list, members, drop; and the clock: clock, tick."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from segql import deploy as deploy_api
from segql import history, run, times
from segql.commands import state
from segql.errors import ConfigError

clock_app = typer.Typer(
    help="Pin, move or release the database clock (segql.now()).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_)
    app.command("deploy")(deploy)
    app.command("list")(list_)
    app.command("members")(members)
    app.command("drop")(drop)
    app.command("tick")(tick)
    app.add_typer(clock_app, name="clock")


FILES = typer.Argument(
    ..., help="Segment and campaign definition files (.sql).", exists=True, dir_okay=False
)


def compile_(
    ctx: typer.Context,
    files: list[Path] = FILES,
    prune: bool = typer.Option(False, "--prune", help="Compile as deploy --prune would."),
) -> None:
    """Print the exact SQL that `segql deploy` would run for these files (changes nothing)."""
    statements = deploy_api.load_files(files)
    with state(ctx).connect() as conn:
        result = deploy_api.compile_sql(conn, statements, prune=prune)
    _warn(result.warnings)
    if result.nothing_to_do:
        typer.echo("-- nothing to deploy: every segment and campaign is unchanged")
        return
    typer.echo(result.script)


def deploy(
    ctx: typer.Context,
    files: list[Path] = FILES,
    prune: bool = typer.Option(
        False, "--prune", help="Drop deployed segments that are not in these files."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask before --prune drops segments (for scripts)."
    ),
) -> None:
    """Deploy segments atomically: new ones are backfilled, changed ones get a new version."""
    statements = deploy_api.load_files(files)
    with state(ctx).connect() as conn, _backfill_progress() as report:
        if prune and not yes:
            _confirm_prune(deploy_api.pruned_by(conn, statements))
        result = deploy_api.deploy(conn, statements, prune=prune, progress=report)
    _warn(result.warnings)
    if result.nothing_to_do:
        typer.echo("Nothing to deploy: every segment and campaign is unchanged.")
        return
    c = result.campaigns
    for label, names in (
        ("created", result.created),
        ("changed", result.changed),
        ("unchanged", result.unchanged),
        ("recompiled", result.recompiled),
        ("dropped", result.dropped),
        ("campaigns created", c.created),
        ("campaigns changed", c.changed),
        ("campaigns unchanged", c.unchanged),
        ("campaigns dropped", c.dropped),
        ("zones created", result.zones.created),
        ("zones changed", result.zones.changed),
        ("zones dropped", result.zones.dropped),
    ):
        if names:
            typer.echo(f"{label}: {', '.join(names)}")
    if result.deploy_id is not None:
        typer.echo(f"Deploy {result.deploy_id} done.")


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        typer.echo(f"Warning: {warning}", err=True)


def _confirm_prune(names: list[str]) -> None:
    """Show what --prune drops; ask on a terminal, refuse without one (scripts pass --yes)."""
    if not names:
        return
    listing = ", ".join(names)
    if not sys.stdin.isatty():
        raise ConfigError(
            f"deploy --prune would drop {len(names)} segment(s): {listing}. Their members exit "
            "(cause 'drop'). Pass --yes to go ahead."
        )
    typer.echo(f"deploy --prune drops {len(names)} segment(s): {listing}", err=True)
    if not typer.confirm("Their members exit (cause 'drop'). Drop them?", err=True):
        raise typer.Exit(1)


def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per segment."),
    show_zones: bool = typer.Option(
        False, "--zones", help="List deployed zones and the segments that read them instead."
    ),
) -> None:
    """List deployed segments with their live size, version and deploy time."""
    if show_zones:
        _list_zones(ctx, as_json)
        return
    with state(ctx).connect() as conn:
        segments = deploy_api.list_segments(conn)
    if as_json:
        typer.echo(json.dumps([s.as_json() for s in segments], indent=2))
        return
    if not segments:
        typer.echo("No segments deployed. Deploy some with `segql deploy FILE.sql`.")
        return
    width = max(len(s.name) for s in segments)
    typer.echo(f"{'NAME':<{width}}  {'SIZE':>8}  {'VERSION':>7}  DEPLOYED AT")
    for s in segments:
        typer.echo(
            f"{s.name:<{width}}  {s.size:>8}  {s.version:>7}  "
            f"{s.deployed_at.isoformat(timespec='seconds')}"
        )


def _list_zones(ctx: typer.Context, as_json: bool) -> None:
    with state(ctx).connect() as conn:
        found = deploy_api.list_zones(conn)
    if as_json:
        typer.echo(json.dumps([z.as_json() for z in found], indent=2))
        return
    if not found:
        typer.echo("No zones deployed. Define one with CREATE ZONE and `segql deploy FILE.sql`.")
        return
    for z in found:
        readers = ", ".join(z.segments) or "no segment"
        typer.echo(f"{z.name} v{z.version} (read by {readers}): {z.definition}")


def members(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment name."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines: user_id, since."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header: user_id,since."),
    at: str | None = typer.Option(
        None,
        "--at",
        help="Who was in the segment at this past moment, from the change log: ISO 8601, "
        "yesterday, '-2h', '3d ago'.",
    ),
) -> None:
    """Print the users in a segment now (or --at a past moment), with when they entered."""
    name = name.lower()
    with state(ctx).connect() as conn:
        if at is None:
            rows = deploy_api.members(conn, name)
        else:
            moment = times.parse_moment(at, run.clock(conn)[0])
            rows = history.members_at(conn, name, moment)
            start = history.log_start(conn, name)
            if not rows and start is not None and moment < start:
                typer.echo(
                    f"No members at {moment.isoformat()}: the change log of '{name}' starts "
                    f"at its first deploy, {start.isoformat()}.",
                    err=True,
                )
    _print_members(rows, as_json, as_csv)


def _print_members(rows: list[tuple[str, datetime]], as_json: bool, as_csv: bool) -> None:
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["user_id", "since"])
        for user, since in rows:
            writer.writerow([user, since.isoformat()])
        return
    for user, since in rows:
        if as_json:
            typer.echo(json.dumps({"user_id": user, "since": since.isoformat()}))
        else:
            typer.echo(f"{user}\t{since.isoformat()}")


def drop(
    ctx: typer.Context,
    names: list[str] = typer.Argument(
        ..., help="Segment, tier group, campaign, zone or model names."
    ),
    cascade: bool = typer.Option(
        False,
        "--cascade",
        help="Also drop the segments that read these with in_segment(), in_zone() or score().",
    ),
) -> None:
    """Drop deployed segments (their members exit with cause 'drop' and their objects are
    removed), campaigns (with their deliveries), and zones or models (with every trained
    version) that no remaining segment reads."""
    with state(ctx).connect() as conn:
        result = deploy_api.deploy(conn, [], drop=[name.lower() for name in names], cascade=cascade)
    gone = [
        *result.dropped,
        *result.campaigns.dropped,
        *result.zones.dropped,
        *result.models.dropped,
    ]
    typer.echo(f"dropped: {', '.join(gone)}")


def tick(
    ctx: typer.Context,
    batch: int = typer.Option(10000, "--batch", min=1, help="Timers per transaction."),
) -> None:
    """Process every timer due at the current clock, then exit."""
    with state(ctx).connect() as conn:
        done = run.tick(conn, batch)
    typer.echo(f"processed {done} timer(s)")


@clock_app.command("set")
def clock_set(
    ctx: typer.Context,
    ts: str = typer.Argument(
        ..., help="ISO 8601 (2026-01-31T12:00:00Z), or from the clock: +2h, -30m, '3d ago'."
    ),
    no_tick: bool = typer.Option(
        False, "--no-tick", help="Do not process the timers that fall due."
    ),
) -> None:
    """Pin segql.now() to TS (tests, demos, replays); timers that fall due are processed."""
    with state(ctx).connect() as conn:
        pinned = run.clock_set(conn, ts)
        done = 0 if no_tick else run.tick(conn)
    typer.echo(f"clock pinned at {pinned.isoformat()}; processed {done} timer(s)")


@clock_app.command("reset")
def clock_reset(ctx: typer.Context) -> None:
    """Unpin the clock: segql.now() follows the database's now() again."""
    with state(ctx).connect() as conn:
        run.clock_reset(conn)
        done = run.tick(conn)
    typer.echo(f"clock follows the database again; processed {done} timer(s)")


@clock_app.command("show")
def clock_show(ctx: typer.Context) -> None:
    """Print segql.now() and whether it is pinned."""
    with state(ctx).connect() as conn:
        now, pinned = run.clock(conn)
    typer.echo(f"{now.isoformat()} ({'pinned' if pinned else 'database clock'})")


@contextmanager
def _backfill_progress() -> Iterator[deploy_api.Progress | None]:
    """A bar per backfilled segment on a terminal; nothing when piped."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def report(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"backfill {name}", total=max(total, 1))
            bar.update(tasks[name], completed=done)

        yield report
