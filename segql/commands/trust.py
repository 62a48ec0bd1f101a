"""Trust commands: verify (and repair) the incremental state; grant and revoke roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from segql import grants
from segql import verify as verify_api
from segql.commands import state

SHOWN = 20  # differences printed per kind; the count is always complete


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("grant")(grant)
    app.command("revoke")(revoke)


def verify(
    ctx: typer.Context,
    segments: list[str] = typer.Argument(None, help="Segments to verify [default: all]."),
    repair: bool = typer.Option(
        False, "--repair", help="Fix every difference (logged with cause 'repair')."
    ),
    sample: int | None = typer.Option(
        None, "--sample", min=1, envvar="SEGQL_VERIFY_SAMPLE", help="Check N random users only."
    ),
) -> None:
    """Compare membership and timers with each segment's full query at the current clock.

    Exit code 0: no difference (or every one repaired); 1: differences remain.
    """
    names = [n.lower() for n in segments or []]
    with state(ctx).connect() as conn, _progress() as report_progress:
        report = verify_api.verify(
            conn, names, sample=sample, repair=repair, progress=report_progress
        )
    _print(report)
    if not report.clean:
        raise typer.Exit(1)


def _print(report: verify_api.Report) -> None:
    who = "all users" if report.checked_users is None else f"{report.checked_users:,} users"
    clock = report.clock.isoformat() if report.clock else "?"
    typer.echo(f"Verified {len(report.segments)} segment(s), {who}, at {clock}.")
    if report.repaired:
        typer.echo(f"Repaired {report.repaired:,} user(s) (cause 'repair').")
    for label, rows in (
        ("missing member (the full query has it, membership does not)", report.missing),
        ("extra member (membership has it, the full query does not)", report.extra),
    ):
        _section(label, [f"{seg}\t{user}" for seg, user in rows])
    _section(
        "timer differs (stored vs what the program keeps)",
        [f"{t.segment}\t{t.user_id}\t{_ts(t.stored)} -> {_ts(t.expected)}" for t in report.timers],
    )
    _section(
        "overdue timer (run `segql tick` or the worker)",
        [f"{seg}\t{user}\tdue {_ts(due)}" for seg, user, due in report.overdue],
    )
    _section(
        "orphan timer (segment not deployed or user unknown)",
        [f"{seg}\t{user}\tdue {_ts(due)}" for seg, user, due in report.orphans],
    )
    if report.clean:
        typer.echo("No differences.")


def _section(label: str, lines: list[str]) -> None:
    if not lines:
        return
    typer.echo(f"{len(lines):,} {label}:")
    for line in lines[:SHOWN]:
        typer.echo(f"  {line}")
    if len(lines) > SHOWN:
        typer.echo(f"  ... and {len(lines) - SHOWN:,} more")


def _ts(value: object) -> str:
    return "none" if value is None else str(getattr(value, "isoformat", lambda: value)())


@contextmanager
def _progress() -> Iterator[verify_api.Progress | None]:
    """A bar per step (membership, timers, repair) on a terminal; nothing when piped."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield update


def grant(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="ingest, read or admin."),
    role: str = typer.Argument(..., help="An existing database role."),
) -> None:
    """Let ROLE ingest (write events and profiles), read (memberships, the log) or admin."""
    with state(ctx).connect() as conn:
        grants.grant(conn, _kind(kind), role)
    typer.echo(f"granted {kind} to {role}")


def revoke(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="ingest, read or admin."),
    role: str = typer.Argument(..., help="A database role."),
) -> None:
    """Take back what `segql grant KIND ROLE` gave."""
    with state(ctx).connect() as conn:
        grants.revoke(conn, _kind(kind), role)
    typer.echo(f"revoked {kind} from {role}")


def _kind(text: str) -> grants.Kind:
    if text not in grants.KINDS:
        raise grants.GrantError(f"unknown role kind '{text}': use one of {', '.join(grants.KINDS)}")
    return text  # type: ignore[return-value]
