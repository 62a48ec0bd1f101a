"""Change-feed commands: listen, history, why, prune-log and consumers."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from typing import Any

import typer

from segql import feed, grants, history, times
from segql.commands import models as model_commands
from segql.commands import state
from segql.deploy import require_segment
from segql.errors import ConfigError
from segql.models import scores as model_scores
from segql.models import store as model_store
from segql.worker import StopEvent, stop_on_signals

consumers_app = typer.Typer(help="Named consumers of the change feed.", no_args_is_help=True)

# How many printed changes `listen` may leave unacknowledged while more are already read. It
# always acknowledges before it waits, so an idle listener has acknowledged everything it printed.
ACK_EVERY = 500


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)
    app.command("history")(history_)
    app.command("why")(why)
    app.command("prune-log")(prune_log)
    app.add_typer(consumers_app, name="consumers")


def listen(
    ctx: typer.Context,
    segments: list[str] | None = typer.Argument(
        None, help="Segments to follow (default: all, including ones deployed later)."
    ),
    consumer: str | None = typer.Option(
        None,
        "--consumer",
        "-c",
        envvar="SEGQL_CONSUMER",
        help="Keep this consumer's position in the database and resume from it.",
    ),
    since: int | None = typer.Option(
        None,
        "--since",
        min=0,
        envvar="SEGQL_LISTEN_SINCE",
        help="Start after this seq (0: the whole log); a --consumer only when it is new.",
    ),
    ack: bool = typer.Option(
        True,
        "--ack/--no-ack",
        envvar="SEGQL_LISTEN_ACK",
        help="Acknowledge printed changes (with --consumer); --no-ack reads without moving it.",
    ),
    poll_interval: float = typer.Option(
        feed.DEFAULT_POLL_INTERVAL,
        "--poll-interval",
        min=0.05,
        envvar="SEGQL_LISTEN_POLL_INTERVAL",
        help="Seconds between reads of the log when no notification arrives.",
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        min=0,
        envvar="SEGQL_LISTEN_TIMEOUT",
        help="Exit after this many seconds without a change (default: run until stopped).",
    ),
) -> None:
    """Print membership changes as JSON lines, in commit order, until SIGTERM or Ctrl-C.

    One object per line (seq, segment, user_id, kind, at, cause, version,
    and for either half of a move between two tiers of a CREATE TIERS,
    tier_change: tiers, from, to), flushed at once, so `segql listen | jq`
    works. Without --consumer or --since it starts now. With --consumer,
    changes are delivered at least once: after a crash, those printed but
    not yet acknowledged are printed again (seq identifies them).
    """
    st = state(ctx)
    names = [n.lower() for n in segments] if segments else None
    with st.connect() as conn:
        for name in names or []:
            require_segment(conn, name)
    _log_to_stderr()
    with (
        StopEvent() as stop,
        stop_on_signals(stop),
        feed.subscribe(
            st.url,
            segments=names,
            consumer=consumer,
            since=since,
            poll_interval=poll_interval,
            timeout=timeout,
            read_only=not ack,
            stop=stop,
        ) as sub,
    ):
        _print_changes(sub)


def _print_changes(sub: feed.Subscription) -> None:
    """Print, then acknowledge: a change is never acknowledged before it is written out."""
    unacked: feed.Change | None = None
    count = 0
    out = sys.stdout
    try:
        for change in sub:
            out.write(json.dumps(change.as_json()) + "\n")
            out.flush()
            unacked, count = change, count + 1
            if sub.buffered == 0 or count >= ACK_EVERY:
                sub.ack(change)
                unacked, count = None, 0
    except BrokenPipeError:
        # The reader went away (`| head`): what it did not read must not count as delivered.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return
    if unacked is not None:
        sub.ack(unacked)


def _log_to_stderr() -> None:
    logger = logging.getLogger(feed.log.name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("segql listen: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def history_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment name."),
    user: str | None = typer.Option(None, "--user", "-u", help="One user's enters and exits."),
    changes: bool = typer.Option(
        False, "--changes", help="List the segment's latest changes instead of totals."
    ),
    every: str = typer.Option(
        "day", "--every", help="Period of the totals: hour, day, week or month (UTC)."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="How many changes --changes lists."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Show a segment's enters and exits over time, from the change log.

    By default: per period, how many users entered and exited and the size
    at its end. With --user: that user's changes. With --changes: the latest
    changes.
    """
    if every not in history.PERIODS:
        raise ConfigError(f"--every must be one of {', '.join(history.PERIODS)}, not '{every}'")
    name = name.lower()
    with state(ctx).connect() as conn:
        if user is not None or changes:
            rows = (
                history.user_changes(conn, name, user)
                if user is not None
                else history.recent_changes(conn, name, limit)
            )
            _print_rows([r.as_json() for r in rows], as_json, _change_line, _CHANGE_HEADER)
        else:
            periods = history.series(conn, name, every)
            header = f"{every.upper() + ' FROM':<25}  {'ENTERS':>8}  {'EXITS':>8}  {'SIZE':>8}"
            _print_rows([p.as_json() for p in periods], as_json, _period_line, header)
        pruned = history.horizon(conn)
    if pruned is not None and not as_json:
        typer.echo(
            f"(the log was pruned before {pruned.isoformat()}: earlier totals are partial)",
            err=True,
        )


def _print_rows(rows: list[dict[str, Any]], as_json: bool, line: Any, header: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if rows:
        typer.echo(header)
    for row in rows:
        typer.echo(line(row))


_CHANGE_HEADER = f"{'AT':<32}  {'KIND':<5}  USER  (CAUSE, VERSION, SEQ)"


def _change_line(row: dict[str, Any]) -> str:
    line = (
        f"{row['at']:<32}  {row['kind']:<5}  {row['user_id']}  "
        f"(cause {row['cause']}, v{row['version']}, seq {row['seq']})"
    )
    move = row.get("tier_change")
    if move:
        line += f"  tier change in {move['tiers']}: {move['from']} -> {move['to']}"
    return line


def _period_line(row: dict[str, Any]) -> str:
    enters, exits = f"+{row['enters']}", f"-{row['exits']}"
    return f"{row['start']:<25}  {enters:>8}  {exits:>8}  {row['size']:>8}"


def why(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment (or model) name."),
    user: str = typer.Argument(..., help="User id."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Explain a user's membership: each condition, the user's values, and what comes next.
    Given a model's name, show the user's score and what each of its terms adds to it."""
    with state(ctx).connect() as conn, grants.reading_user_data("segql why"):
        if name.lower() in model_store.load(conn):
            scored = model_scores.why(conn, name.lower(), user)
            if as_json:
                typer.echo(json.dumps(scored.as_json(), indent=2))
                return
            for line in model_commands.explanation_lines(scored):
                typer.echo(line)
            return
        explained = history.why(conn, name.lower(), user)
    if as_json:
        typer.echo(json.dumps(explained.as_json(), indent=2))
        return
    for line in explanation_lines(explained):
        typer.echo(line)


def explanation_lines(e: history.Explanation) -> list[str]:
    status = f"a member since {_ts(e.member_since)}" if e.member_since else "not a member"
    lines = [f"{e.user_id} is {status} of {e.segment} (v{e.version}), at {_ts(e.now)}."]
    if not e.known_user:
        lines.append(f"  {e.user_id} has no events and no profile.")
    joiner = {"and": "all of", "or": "any of", None: ""}[e.combinator]
    verdict = "holds" if e.holds else "does not hold"
    lines.append(f"The definition {verdict}" + (f"; it needs {joiner}:" if joiner else ":"))
    for c in e.conditions:
        mark = "yes" if c.holds else "no " if c.holds is False else "n/a"
        lines.append(f"  [{mark}] {c.text}")
        for v in c.values:
            lines.append(f"        {v.label} = {_value(v.value)}")
        lines.extend(f"        {line}" for line in _threshold(c))
    if e.holds != e.member:
        lines.append(
            "  (membership will follow at the next change for this user, or the next "
            "timer: the definition reads the clock)"
        )
    last = e.last_change
    lines.append(
        f"Last change: {last.kind} at {_ts(last.at)} (cause {last.cause}, seq {last.seq})"
        if last
        else "Last change: none"
    )
    lines.append(_next_timer_line(e))
    return lines


_EFFECTS = {
    "enter": "{user} enters {segment}",
    "exit": "{user} leaves {segment}",
    "stay in": "{user} stays in {segment}",
    "stay out": "{user} stays out of {segment}",
}


def _next_timer_line(e: history.Explanation) -> str:
    if e.next_timer is None:
        return "Next timer: none (only a new event or profile change can change this)"
    effect = e.next_timer_effect
    then = _EFFECTS[effect].format(user=e.user_id, segment=e.segment) if effect else "re-checked"
    return (
        f"Next timer: {_ts(e.next_timer)}: the definition is checked again then; "
        f"with no new event before it, {then}."
    )


def _threshold(c: history.Condition) -> list[str]:
    """The side of a comparison that is not one of the user's values, e.g. `> 100`."""
    if c.op is None or c.left is None or c.right is None:
        return []
    read = {v.label for v in c.values}
    sides = [s for s in (c.left, c.right) if s.label not in read]
    if len(sides) != 1:
        return [f"{_value(c.left.value)} {c.op} {_value(c.right.value)}"]
    side = sides[0]
    shown = _value(side.value)
    computed = f" ({side.label})" if side.label not in (shown, str(side.value)) else ""
    return [f"threshold: {shown}{computed}"]


def _ts(ts: datetime | None) -> str:
    return ts.isoformat() if ts is not None else "-"


def _value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def prune_log(
    ctx: typer.Context,
    older_than: str = typer.Option(
        ...,
        "--older-than",
        envvar="SEGQL_PRUNE_OLDER_THAN",
        help="Age of the changes to delete: 90d, 12h, 2w, 30m, 45s, '2 weeks' (segql clock).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Also delete changes named consumers have not acknowledged."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report, delete nothing."),
) -> None:
    """Delete old changes from the log, never past the slowest named consumer (unless --force).

    Each user's last change before the cutoff is kept when it is an enter, so
    that `history` and membership at a past moment stay exact from the cutoff
    on.
    """
    age = times.parse_distance(older_than)
    with state(ctx).connect() as conn:
        row = conn.execute("SELECT segql.now() - %s::interval", [age]).fetchone()
        assert row is not None
        result = feed.prune(conn, row[0], force=force, dry_run=dry_run)
        conn.commit()
    for line in prune_lines(result):
        typer.echo(line)


def prune_lines(r: feed.PruneResult) -> list[str]:
    verb = "Would delete" if r.dry_run else "Deleted"
    lines = [f"{verb} {r.total:,} change(s) from before {r.cutoff.isoformat()}."]
    for segment, n in sorted(r.deleted.items()):
        lines.append(f"  {segment}: {n:,}")
    if r.held_back:
        lines.append(
            f"Kept {r.held_back:,} older change(s) that named consumers have not "
            "acknowledged yet (--force deletes them):"
        )
        for name, n in sorted(r.held_by.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {name}: {n:,} pending")
    return lines


@consumers_app.command("list")
def consumers_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Show each named consumer: its segments, last acknowledged seq and pending changes."""
    with state(ctx).connect() as conn:
        found = feed.consumers(conn)
    if as_json:
        typer.echo(json.dumps([c.as_json() for c in found], indent=2))
        return
    if not found:
        typer.echo("No named consumers (start one with `segql listen --consumer NAME`).")
        return
    width = max(len("NAME"), *(len(c.name) for c in found))
    typer.echo(f"{'NAME':<{width}}  {'PENDING':>9}  {'LAST SEQ':>9}  {'ACKED AT':<25}  SEGMENTS")
    for c in found:
        acked = c.acked_at.isoformat(timespec="seconds") if c.acked_at else "-"
        last = str(c.last_seq) if c.last_seq is not None else "-"
        typer.echo(
            f"{c.name:<{width}}  {c.pending:>9,}  {last:>9}  {acked:<25}  "
            f"{', '.join(c.segments) if c.segments else '(all)'}"
        )


@consumers_app.command("drop")
def consumers_drop(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Consumer name."),
) -> None:
    """Forget a consumer's position, so that it no longer holds back `prune-log`."""
    with state(ctx).connect() as conn:
        dropped = feed.drop_consumer(conn, name)
    if not dropped:
        raise ConfigError(f"there is no consumer named '{name}' (see `segql consumers list`)")
    typer.echo(f"dropped consumer {name}")
