"""`segql worker`: apply timers at their due time, or hand the tick to pg_cron."""

from __future__ import annotations

import logging
import sys

import typer

from segql import times
from segql import worker as worker_api
from segql.campaigns import deliver
from segql.commands import state


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    batch: int = typer.Option(
        10_000,
        "--batch",
        envvar="SEGQL_WORKER_BATCH",
        min=1,
        help="Timers applied per transaction (about: one due instant is never split).",
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        envvar="SEGQL_WORKER_QUIET",
        help="Log only problems, not a line per tick.",
    ),
    max_sleep: float = typer.Option(
        worker_api.MAX_SLEEP,
        "--max-sleep",
        envvar="SEGQL_WORKER_MAX_SLEEP",
        min=0.1,
        help="Longest sleep in seconds; waking this often checks that the database is there.",
    ),
    senders: int = typer.Option(
        4,
        "--senders",
        envvar="SEGQL_WORKER_SENDERS",
        min=0,
        help="Webhook sender threads (each holds one request in flight); 0 sends no campaigns.",
    ),
    retry_schedule: str = typer.Option(
        deliver.SCHEDULE_TEXT,
        "--retry-schedule",
        envvar="SEGQL_WEBHOOK_RETRY_SCHEDULE",
        help="Waits between webhook attempts (e.g. 5s,5m,30m,2h); dead after the last.",
    ),
    webhook_timeout: float = typer.Option(
        deliver.TIMEOUT,
        "--webhook-timeout",
        envvar="SEGQL_WEBHOOK_TIMEOUT",
        min=0.1,
        help="Seconds to wait for a receiver's answer.",
    ),
    refresh_every: str = typer.Option(
        "1d",
        "--refresh-every",
        envvar="SEGQL_RFM_REFRESH_EVERY",
        help="How often to recompute RFM cutpoints and every user's scores (e.g. 1d, 12h); "
        "'never' leaves it to `segql refresh`.",
    ),
    relay_interval: float = typer.Option(
        worker_api.RELAY_INTERVAL,
        "--relay-interval",
        envvar="SEGQL_RELAY_INTERVAL",
        min=0.0,
        help="In 'relay' notify mode, seconds between announcements of committed changes "
        "(the most a listener waits); 0 leaves them to a separate `segql relay`.",
    ),
    install_cron: bool = typer.Option(
        False,
        "--install-cron",
        help="Instead of running, schedule SELECT segql.tick() every second with pg_cron "
        "(needs pg_cron 1.5+ in shared_preload_libraries) and exit.",
    ),
) -> None:
    """Run the timer and campaign worker until SIGTERM or Ctrl-C.

    Windows closing, "days since" thresholds and every other time-driven change are applied at
    their exact due time, logged with cause 'time' and announced on channel `segql`; campaign
    webhooks are planned from the change log and sent, signed, with retries; RFM cutpoints are
    refreshed on their schedule. Run one (or more: they share the work) next to the database.
    """
    st = state(ctx)
    st.ensure_schema()
    if install_cron:
        _install_cron(st.url)
        return
    _log_to_stderr(logging.DEBUG if st.debug else logging.WARNING if quiet else logging.INFO)
    with worker_api.StopEvent() as stop, worker_api.stop_on_signals(stop):
        worker_api.run_worker(
            st.url,
            stop_event=stop,
            batch=batch,
            max_sleep=max_sleep,
            campaigns=senders > 0,
            senders=senders,
            delivery=deliver.Settings(deliver.parse_schedule(retry_schedule), webhook_timeout),
            refresh_every=_every(refresh_every),
            relay_interval=relay_interval or None,
        )


def _every(text: str) -> float | None:
    if text.strip().lower() in ("never", "off", "0"):
        return None
    return times.parse_distance(text).total_seconds()


def _install_cron(url: str) -> None:
    job = worker_api.install_cron(url)
    where = "" if job.cron_database == job.database else f" (kept in {job.cron_database})"
    typer.echo(
        f"pg_cron job '{job.name}' (id {job.job_id}){where} runs "
        f"`{worker_api.CRON_COMMAND}` every second in database {job.database}."
    )
    typer.echo(
        "Timers are applied within about a second of their due time; `segql worker` applies "
        "them at the exact due time. pg_cron records every run in cron.job_run_details "
        "(86,400 rows a day): set cron.log_run = off or purge that table regularly."
    )


def _log_to_stderr(level: int) -> None:
    logger = logging.getLogger(worker_api.log.name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
