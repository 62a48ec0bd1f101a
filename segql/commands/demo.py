"""`segql demo`: watch segments move as a synthetic shop streams events into them."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from segql import db
from segql import demo as demo_api
from segql.campaigns.receiver import Receiver
from segql.commands import state
from segql.dashboard import server as dashboard_server
from segql.worker import StopEvent, stop_on_signals

REFRESH_INTERVAL = 0.25  # seconds between two redraws of the live view
PLAIN_INTERVAL = 2.0  # seconds between two progress lines when not on a terminal
CAUSES = ("event", "profile", "time")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    seconds: float | None = typer.Option(
        None,
        "--seconds",
        envvar="SEGQL_DEMO_SECONDS",
        min=0.1,
        help="Stop after this many seconds of live traffic.",
        show_default="until Ctrl-C",
    ),
    rate: float = typer.Option(
        50.0, "--rate", envvar="SEGQL_DEMO_RATE", min=0.1, help="Live events per second."
    ),
    users: int = typer.Option(2000, "--users", envvar="SEGQL_DEMO_USERS", min=1, help="Users."),
    history: int = typer.Option(
        20_000,
        "--history",
        envvar="SEGQL_DEMO_HISTORY",
        min=0,
        help="Events of history loaded before the live traffic starts.",
    ),
    seed: int = typer.Option(0, "--seed", envvar="SEGQL_DEMO_SEED", help="Random seed."),
    active_window: int = typer.Option(
        10,
        "--active-window",
        envvar="SEGQL_DEMO_ACTIVE_WINDOW",
        min=1,
        help="Window of the demo_active_now segment in seconds: users leave it, by the timer, "
        "this long after their last event.",
    ),
    fast_clock: float | None = typer.Option(
        None,
        "--fast-clock",
        envvar="SEGQL_DEMO_FAST_CLOCK",
        min=0.01,
        help="Pin the database clock and advance it FACTOR times faster than real time, so "
        "windows close sooner.",
        show_default="the real clock",
    ),
    database: str = typer.Option(
        demo_api.DATABASE,
        "--demo-database",
        envvar="SEGQL_DEMO_DATABASE",
        help=f"Database the demo creates (dropped first if it exists) on the server; the name "
        f"must begin with {demo_api.DATABASE}.",
    ),
    plain: bool = typer.Option(
        False,
        "--plain",
        envvar="SEGQL_DEMO_PLAIN",
        help="Progress lines instead of the full-screen view (the default when not on a terminal).",
    ),
    dashboard: bool = typer.Option(
        True,
        "--dashboard/--no-dashboard",
        envvar="SEGQL_DEMO_DASHBOARD",
        help="Serve the web dashboard on loopback while the demo runs.",
    ),
    dashboard_port: int = typer.Option(
        dashboard_server.DEFAULT_PORT,
        "--dashboard-port",
        envvar="SEGQL_DASHBOARD_PORT",
        min=0,
        max=65535,
        help="Port of the dashboard; a free one when it is taken (0: always a free one).",
    ),
) -> None:
    """Run a live demo: a synthetic shop streams into the example segments while you watch.

    Creates a fresh database (segql_demo) on the server, loads a seeded history, deploys the
    bundled examples plus demo_active_now and a campaign posting to a local receiver, runs the
    timer and campaign worker and streams events until Ctrl-C or --seconds. Other databases are
    never touched.
    """
    options = demo_api.Options(
        users=users,
        history_events=history,
        seed=seed,
        rate=rate,
        active_window=active_window,
        fast_clock=fast_clock,
        database=database,
    )
    console = Console()
    live_view = console.is_terminal and not plain
    with Receiver() as receiver:
        with _setup_progress(console, live_view) as progress:
            prepared = demo_api.prepare(state(ctx).url, options, progress, receiver.url)
        with _dashboard(prepared.url, dashboard, dashboard_port) as url:
            summary = _run(prepared, options, receiver, live_view, console, seconds, url)
    _print_summary(summary, prepared)


def _run(
    prepared: demo_api.Prepared,
    options: demo_api.Options,
    receiver: Receiver,
    live_view: bool,
    console: Console,
    seconds: float | None,
    url: str | None,
) -> demo_api.Summary:
    with (
        StopEvent() as stop,
        stop_on_signals(stop),
        demo_api.Demo(prepared, options, stop, capture_logs=live_view, receiver=receiver) as d,
    ):
        if url:
            typer.echo(f"Dashboard: {url}")
        if live_view:
            _run_live(console, d, seconds, url)
        else:
            _run_plain(d, seconds)
        return d.finish()


@contextmanager
def _dashboard(url: str, wanted: bool, port: int) -> Iterator[str | None]:
    """The dashboard of the demo database, served from this process while the demo runs."""
    if not wanted:
        yield None
        return
    if port and not dashboard_server.port_free(dashboard_server.DEFAULT_HOST, port):
        port = 0  # taken, e.g. by a `segql dashboard` already running: any free one
    served = dashboard_server.Background(url, port=port).start()
    try:
        yield served.url
    finally:
        served.stop()


@contextmanager
def _setup_progress(console: Console, live_view: bool) -> Iterator[Callable[[str], None]]:
    if not live_view:
        yield lambda message: typer.echo(f"{message} ...")
        return
    with console.status("Setting up") as status:
        yield lambda message: status.update(f"{message} ...")


# -- the full-screen view ------------------------------------------------------------------------


def _run_live(
    console: Console, d: demo_api.Demo, seconds: float | None, dashboard_url: str | None
) -> None:
    next_draw = 0.0
    with Live(console=console, screen=True, auto_refresh=False) as live:

        def draw() -> None:
            nonlocal next_draw
            if time.monotonic() >= next_draw:
                next_draw = time.monotonic() + REFRESH_INTERVAL
                live.update(_view(d, seconds, console.size.height, dashboard_url), refresh=True)

        d.run_until(seconds, draw)


def _view(
    d: demo_api.Demo, seconds: float | None, height: int, dashboard_url: str | None = None
) -> RenderableType:
    segments = _segments_table(d)
    header = _header(d, seconds)
    if dashboard_url:
        header.insert(1, Text.assemble("dashboard ", (dashboard_url, "bold underline")))
    # The feed takes what is left of the screen: header, table (rows + title + head + rule +
    # bottom) and the feed's own title and head.
    used = len(header) + len(d.sizes) + 4 + 2
    return Group(*header, segments, _feed_table(d, max(3, height - used - 1)))


def _header(d: demo_api.Demo, seconds: float | None) -> list[Text]:
    stop_hint = f"stops after {seconds:g} s" if seconds else "Ctrl-C to stop"
    totals = d.tally.totals()
    enters = sum(n for (kind, _), n in totals.items() if kind == "enter")
    exits = sum(n for (kind, _), n in totals.items() if kind == "exit")
    title = Text.assemble(
        ("segql demo", "bold magenta"),
        f"  a synthetic shop streaming into live segments · database {d.options.database}",
        f" · {d.elapsed:5.1f} s ({stop_hint})",
    )
    clock = "real"
    if d.clock.pinned:
        at = d.clock.now().astimezone()
        clock = f"pinned, {d.options.fast_clock:g}x real time, at {at:%Y-%m-%d %H:%M:%S}"
    traffic = Text(
        f"events {d.events_sent:,} ({d.options.rate:g}/s) · profile updates "
        f"{d.profile_updates:,} · clock {clock}"
    )
    causes: list[str | tuple[str, str]] = []
    for cause in CAUSES:
        part = f"{cause} {totals['enter', cause]:,}/{totals['exit', cause]:,}"
        # Timed exits are the ones no event caused: the worker's doing, worth picking out.
        causes += [" · ", (part, "bold yellow") if cause == "time" else part]
    rates = d.tally.rates()
    enter_rate = sum(r for (_, kind), r in rates.items() if kind == "enter")
    exit_rate = sum(r for (_, kind), r in rates.items() if kind == "exit")
    changes = Text.assemble(
        "changes ",
        (f"▲ {enters:,} enters ({enter_rate:.1f}/s)", "green"),
        "  ",
        (f"▼ {exits:,} exits ({exit_rate:.1f}/s)", "red"),
        "   in/out by cause: ",
        *causes[1:],
    )
    lines = [title, traffic, changes]
    if d.notices:
        lines.append(Text(f"note: {d.notices[-1]}", style="yellow", no_wrap=True))
    return lines


def _segments_table(d: demo_api.Demo) -> Table:
    rates = d.tally.rates()
    span = demo_api.TREND_SAMPLES * demo_api.SAMPLE_INTERVAL
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column("Segment", no_wrap=True)
    table.add_column("Members", justify="right")
    table.add_column("Δ", justify="right")
    # Right-aligned, so the newest reading always sits at the same place beside the rates.
    table.add_column(
        f"Trend, last {span:g} s",
        justify="right",
        no_wrap=True,
        min_width=demo_api.TREND_SAMPLES,
    )
    table.add_column("in/s", justify="right")
    table.add_column("out/s", justify="right")
    start = d.sizes_start
    for name in _display_order(d.sizes):
        size = d.sizes[name]
        delta = size - start.get(name, 0)
        table.add_row(
            Text(name, style="bold cyan" if name == demo_api.ACTIVE_SEGMENT else ""),
            f"{size:,}",
            Text(f"{delta:+,}", style="green" if delta > 0 else "red" if delta < 0 else "dim"),
            Text(demo_api.sparkline(d.trends.get(name, [])), style="blue"),
            _rate(rates.get((name, "enter"), 0.0), "green"),
            _rate(rates.get((name, "exit"), 0.0), "red"),
        )
    return table


def _display_order(sizes: dict[str, int]) -> list[str]:
    """The demo's own segment first: it is the one that visibly moves by the second."""
    return sorted(sizes, key=lambda name: (name != demo_api.ACTIVE_SEGMENT, name))


def _rate(value: float, style: str) -> Text:
    return Text(f"{value:.1f}", style=style if value else "dim")


def _feed_table(d: demo_api.Demo, rows: int) -> Table:
    table = Table(
        box=None,
        padding=(0, 1),
        title="Latest changes (from the change feed)",
        title_justify="left",
        title_style="bold",
    )
    for column in ("Time", "Change", "Segment", "User", "Cause"):
        table.add_column(column, no_wrap=True)
    for change in reversed(d.tally.latest(rows)):
        enter = change.kind == "enter"
        table.add_row(
            f"{change.at.astimezone():%H:%M:%S}",
            Text("▲ enter" if enter else "▼ exit", style="green" if enter else "red"),
            change.segment,
            change.user_id,
            Text(change.cause, style="yellow" if change.cause == "time" else ""),
        )
    return table


# -- plain output --------------------------------------------------------------------------------


def _run_plain(d: demo_api.Demo, seconds: float | None) -> None:
    typer.echo(
        f"Streaming {d.options.rate:g} events/s"
        + (f" for {seconds:g} s" if seconds else " until Ctrl-C")
        + f"; {demo_api.ACTIVE_SEGMENT} keeps users for {d.options.active_window} s"
        + (f" of a clock running {d.options.fast_clock:g}x." if d.clock.pinned else ".")
    )
    next_line = PLAIN_INTERVAL

    def progress_line() -> None:
        nonlocal next_line
        if d.elapsed < next_line:
            return
        next_line += PLAIN_INTERVAL
        totals = d.tally.totals()
        enters = sum(n for (kind, _), n in totals.items() if kind == "enter")
        exits = sum(n for (kind, _), n in totals.items() if kind == "exit")
        active = d.sizes.get(demo_api.ACTIVE_SEGMENT, 0)
        typer.echo(
            f"{d.elapsed:6.1f}s  events {d.events_sent:,}  enters {enters:,}  exits {exits:,} "
            f"(timed {totals['exit', 'time']:,})  {demo_api.ACTIVE_SEGMENT} {active:,}"
        )

    d.run_until(seconds, progress_line)


def _print_summary(summary: demo_api.Summary, prepared: demo_api.Prepared) -> None:
    rate = summary.events / summary.seconds if summary.seconds else 0.0
    lines = [
        f"Demo finished after {summary.seconds:.1f} s.",
        f"Events sent: {summary.events:,} ({rate:.1f}/s); profile updates: "
        f"{summary.profile_updates:,}.",
        f"Changes: {summary.total('enter'):,} enters, {summary.total('exit'):,} exits.",
        f"  {'cause':<10}{'enters':>8}{'exits':>8}",
    ]
    causes = sorted(set(CAUSES) | {cause for _, cause in summary.changes}, key=_cause_order)
    for cause in causes:
        enters, exits = summary.changes["enter", cause], summary.changes["exit", cause]
        lines.append(f"  {cause:<10}{enters:>8,}{exits:>8,}")
    lines.append(f"Timed exits: {summary.timed_exits:,}.")
    seen, total = sum(summary.seen.values()), sum(summary.changes.values())
    lines.append(
        f"The change feed delivered all {total:,} changes."
        if summary.seen == summary.changes
        else f"The change feed delivered {seen:,} of the {total:,} changes in the log."
    )
    if summary.retried_writes:
        lines.append(
            f"Writes sent again after losing a deadlock to the timer worker: "
            f"{summary.retried_writes:,}."
        )
    hooks = summary.webhooks
    if hooks is not None:
        lines.append(
            f"Campaign {demo_api.DEMO_CAMPAIGN} (on entering {demo_api.ACTIVE_SEGMENT}): "
            f"{hooks.sent:,} webhooks sent, {hooks.skipped:,} skipped by its cap of 1 per user "
            f"an hour, {hooks.pending:,} pending; the demo's receiver got {hooks.received:,}, "
            f"{hooks.verified:,} with a valid signature."
        )
    width = max(len(name) for name in summary.sizes_end) if summary.sizes_end else 10
    lines.append(f"  {'segment':<{width}}{'start':>8}{'end':>8}")
    for name in sorted(summary.sizes_end):
        start, end = summary.sizes_start.get(name, 0), summary.sizes_end[name]
        lines.append(f"  {name:<{width}}{start:>8,}{end:>8,}")
    lines.extend(_explore_lines(summary, prepared))
    typer.echo("\n".join(lines))


def _explore_lines(summary: demo_api.Summary, prepared: demo_api.Prepared) -> list[str]:
    """The exact commands that keep exploring the demo's data: it is a database of its own,
    so a plain `segql list` (the default database) shows none of it."""
    where = db.mask_password(prepared.url)
    lines = [
        "The demo's data stays in its own database. To keep exploring it, point segql there:",
        f"  export SEGQL_DATABASE_URL='{where}'"
        + ("   # with the real password" if where != prepared.url else ""),
        "  segql list",
    ]
    biggest = max(summary.sizes_end, key=lambda n: summary.sizes_end[n], default=None)
    if biggest is not None:
        lines.append(f"  segql members {biggest}")
        user = _a_member(prepared.url, biggest)
        if user is not None:
            lines.append(f"  segql why {biggest} {shlex.quote(user)}")
        lines.append(f"  segql history {biggest}")
    if summary.pinned_at is not None:
        lines.append(
            f"Its clock stays pinned at {summary.pinned_at.isoformat()}; "
            "`segql clock reset` there lets it run again."
        )
    return lines


def _a_member(url: str, segment: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT user_id FROM segql.members WHERE segment = %s ORDER BY user_id LIMIT 1",
            [segment],
        ).fetchone()
    return str(row[0]) if row else None


def _cause_order(cause: str) -> tuple[int, str]:
    return (CAUSES.index(cause) if cause in CAUSES else len(CAUSES), cause)
