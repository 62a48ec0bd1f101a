"""`segql campaigns ...`: what each campaign sent, its deliveries, replays and its secret."""

from __future__ import annotations

import json

import typer

from segql import run, times
from segql.campaigns import report
from segql.commands import state

app = typer.Typer(
    help="Webhook campaigns: CREATE CAMPAIGN in a definition file, delivered by `segql worker`.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="campaigns")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per campaign."),
) -> None:
    """Deliveries sent, pending, failed and skipped per campaign (the segql.campaign_stats view)."""
    with state(ctx).connect() as conn:
        rows = report.stats(conn)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("No campaigns deployed. Add CREATE CAMPAIGN to a file and `segql deploy` it.")
        return
    width = max(len(r.campaign) for r in rows)
    typer.echo(f"{'NAME':<{width}}  {'SENT':>7}  {'PENDING':>7}  {'FAILED':>7}  {'SKIPPED':>7}  ON")
    for r in rows:
        flag = "  DISABLED (410 Gone)" if r.disabled_at else ""
        typer.echo(
            f"{r.campaign:<{width}}  {r.sent:>7}  {r.pending:>7}  {r.failed:>7}  "
            f"{r.skipped:>7}  {r.kind} {r.segment} -> {r.url}{flag}"
        )


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign name."),
    failed: bool = typer.Option(False, "--failed", help="Only dead deliveries."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines."),
) -> None:
    """Each delivery of a campaign: webhook-id, user, status, attempts, last answer."""
    with state(ctx).connect() as conn:
        rows = report.deliveries(conn, name.lower(), failed)
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row))
        else:
            answer = row["last_status"] if row["last_status"] is not None else "-"
            due = f"due={row['due_at']}" if row["status"] == "pending" else ""
            typer.echo(
                f"{row['webhook_id']}\t{row['user_id']}\t{row['status']}\t"
                f"attempts={row['attempts']}\tlast={answer}\t{due}\t{row['reason'] or ''}"
            )


@app.command("replay")
def replay(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign name."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only deliveries of changes at or after this moment: ISO 8601, yesterday, '3d ago'.",
    ),
) -> None:
    """Send dead deliveries again (same webhook-id and body) and re-enable a disabled endpoint."""
    with state(ctx).connect() as conn:
        moment = times.parse_moment(since, run.clock(conn)[0]) if since else None
        count = report.replay(conn, name.lower(), moment)
    typer.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again for {name.lower()}")


@app.command("secret")
def secret(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name.")) -> None:
    """Print the campaign's signing secret (whsec_...), for the receiver's verifier."""
    with state(ctx).connect() as conn:
        typer.echo(report.secret(conn, name.lower()))
