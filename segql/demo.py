"""The live demo: a synthetic shop streams into the bundled segments while someone watches.

`prepare` builds a fresh database with a seeded history and the example segments deployed, so
every segment starts from a believable size. `Demo` then runs three things side by side:

- traffic, in the caller's thread: events from `synth.live_events` at a steady rate, a few per
  COPY, and now and then a profile update (a New York customer moving between the pro and the
  premium plan), so that all three causes of change (event, profile, time) show up;
- the timer worker (`segql.worker.run_worker`) in a thread, which applies timed exits at their
  exact due time (on a pinned clock the traffic applies them itself, see `Demo.step`);
- the change feed (`segql.feed.subscribe`) in a thread, which counts what it sees and keeps the
  most recent changes for display.

The segments of the examples move on the scale of hours and days, too slowly for anyone to see a
timed exit in a short demo. So the demo also deploys `demo_active_now` ("did anything in the last
N seconds"): users enter it with their events and leave it N seconds after their last one, by the
timer. A pinned clock advanced faster than real time (`fast_clock`) makes every window shrink in
proportion.

The summary at the end counts from the change log once nothing writes any more, so its counts are
exact; it also says whether the feed delivered every one of those changes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from segql import db, deploy, feed, run, schema, synth, zones
from segql.campaigns import deliver, sign
from segql.campaigns.parse import CampaignDialect
from segql.campaigns.receiver import Receiver
from segql.campaigns.runner import CampaignRunner
from segql.errors import ConfigError, SegqlError
from segql.models import store as models
from segql.models.parse import ModelDialect
from segql.parse import Statement, parse_text
from segql.worker import StopEvent, run_worker

DATABASE = "segql_demo"
ACTIVE_SEGMENT = "demo_active_now"
DEMO_CAMPAIGN = "demo_welcome"
SAMPLE_INTERVAL = 0.5  # seconds between two readings of the segment sizes
TREND_SAMPLES = 60  # readings a trend line shows
RATE_WINDOW = 5.0  # seconds over which enters and exits per second are averaged
RECENT_CHANGES = 200
PROFILE_UPDATE_INTERVAL = 1.0  # seconds between two plan changes
BATCH_INTERVAL = 0.1  # seconds between two COPYs of live events
FEED_CATCH_UP = 10.0  # seconds the feed gets, at the end, to deliver the last changes
# A year of sparse history for the recency tiers, then a dense recent stretch for the windows of
# hours and days; the split is by share of events.
HISTORY_DAYS = 365
RECENT_DAYS = 3
RECENT_SHARE = 0.4
NEW_YORK = "New York"
WRITE_ATTEMPTS = 5
LOGGERS = ("segql.worker", "segql.feed")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    users: int = 2000
    history_events: int = 20_000
    seed: int = 0
    rate: float = 50.0  # live events per second
    active_window: int = 10  # seconds, the window of demo_active_now
    fast_clock: float | None = None  # pin the clock and advance it this many times faster
    database: str = DATABASE

    def __post_init__(self) -> None:
        if not self.database.startswith(DATABASE):
            # The demo drops and recreates its database on every run: a name that cannot be
            # anyone's real database keeps a typo from destroying one.
            raise ConfigError(
                f"the demo database is dropped and recreated on every run, so its name must "
                f"begin with '{DATABASE}' (got '{self.database}')"
            )
        if self.users < 1 or self.rate <= 0 or self.active_window < 1:
            raise ConfigError("users, rate and active window must be positive")
        if self.fast_clock is not None and self.fast_clock <= 0:
            raise ConfigError("--fast-clock must be positive (1 is real speed on a pinned clock)")


def active_definition(window_seconds: int) -> str:
    return (
        f"CREATE SEGMENT {ACTIVE_SEGMENT}\n"
        f"  COMMENT 'Did anything in the last {window_seconds} seconds'\n"
        f"AS did('*', within => '{window_seconds} seconds');\n"
    )


def campaign_definition(url: str) -> str:
    """A webhook for each user who becomes active, at most one per user an hour."""
    return (
        f"CREATE CAMPAIGN {DEMO_CAMPAIGN}\n"
        f"  COMMENT 'Say hello to a user who just became active'\n"
        f"  ON ENTER {ACTIVE_SEGMENT}\n"
        f"  SEND WEBHOOK '{url}'\n"
        f"  LIMIT 1 PER '1 hour';\n"
    )


def example_statements() -> list[Statement]:
    """The segments (and the zones they read) shipped in the package (`segql.examples`), file
    by file in name order."""
    statements: list[Statement] = []
    files = sorted(resources.files("segql.examples").iterdir(), key=lambda f: f.name)
    for file in files:
        if file.name.endswith(".sql"):
            text = file.read_text(encoding="utf-8")
            statements.extend(parse_text(text, f"examples/{file.name}", ModelDialect))
    return statements


# -- setting up ----------------------------------------------------------------------------------


def reset_database(url: str, name: str) -> str:
    """Drop and create database `name` on the server of `url`; returns its URL.

    Only that database is touched. The connection that issues the DROP cannot be to the database
    itself, so when `url` points at it, the server's `postgres` database is used instead.
    """
    admin = url if db.database_name(url) != name else db.with_database(url, "postgres")
    ident = sql.Identifier(name)
    try:
        with psycopg.connect(admin, autocommit=True, application_name="segql demo") as conn:
            # WITH (FORCE) ends the sessions of an earlier demo still attached (PostgreSQL 13+).
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SegqlError(
            f"cannot create the demo database {name}: {exc.diag.message_primary}. The demo "
            "runs in a database of its own; use a role with CREATEDB, or run it on the "
            "embedded server (no --database-url)"
        ) from None
    return db.with_database(url, name)


@dataclass
class Prepared:
    url: str
    profiles: list[dict[str, Any]]
    segments: list[str]
    history_end: datetime
    campaign: str | None = None


def prepare(
    url: str,
    options: Options,
    progress: Progress = lambda _: None,
    webhook_url: str | None = None,
) -> Prepared:
    """A fresh demo database on the server of `url`: schema, history and segments, and with
    `webhook_url` a campaign that posts there."""
    progress(f"Creating database {options.database}")
    demo_url = reset_database(url, options.database)
    schema.ensure_schema(demo_url)
    end = datetime.now(UTC)
    progress(f"Loading {options.users:,} users and {options.history_events:,} events of history")
    with psycopg.connect(demo_url, application_name="segql demo") as conn:
        profiles = list(synth.generate_profiles(options.users, options.seed, end))
        synth.copy_profiles(conn, profiles)
        synth.copy_event_rows(conn, history_rows(options, end))
        statements = [*example_statements(), *parse_text(active_definition(options.active_window))]
        progress(f"Deploying {sum(not zones.is_zone(s) for s in statements)} segments")
        if webhook_url is not None:
            statements += parse_text(campaign_definition(webhook_url), "demo", CampaignDialect)
        result = deploy.deploy(conn, statements)
        conn.commit()
        _train_models(conn, progress)
    segments = sorted(result.created + result.changed + result.unchanged)
    campaign = DEMO_CAMPAIGN if webhook_url is not None else None
    return Prepared(demo_url, profiles, segments, end, campaign)


def _train_models(conn: psycopg.Connection, progress: Progress) -> None:
    """Train the example models on the history just loaded, when the ml extra is installed;
    without it their scores stay NULL and the demo says how to train them."""
    from segql.models.train import MissingDependency, train

    for name in sorted(models.load(conn)):
        try:
            progress(f"Training {name} on the history")
            result = train(conn, name)
        except MissingDependency:
            progress(f"Not training {name}: pip install 'segql[ml]', then segql train {name}")
            return
        conn.commit()
        progress(f"Trained {name}: holdout AUC {result.holdout_auc:.3f}")


def history_rows(options: Options, end: datetime) -> Iterator[synth.Row]:
    """A year of events ending `RECENT_DAYS` ago, then the recent days at a higher density."""
    recent = int(options.history_events * RECENT_SHARE)
    split = end - timedelta(days=RECENT_DAYS)
    yield from synth.event_rows(
        options.history_events - recent,
        options.users,
        options.seed,
        end - timedelta(days=HISTORY_DAYS),
        split,
    )
    # Another seed, or the recent days would replay the year's first sessions user for user.
    yield from synth.event_rows(recent, options.users, options.seed + 1, split, end)


# -- running -------------------------------------------------------------------------------------


class Clock:
    """The demo's time: the real clock, or a pinned one that runs `factor` times faster."""

    def __init__(self, factor: float | None) -> None:
        self.factor = factor
        self._origin = datetime.now(UTC)
        self._started = time.monotonic()

    @property
    def pinned(self) -> bool:
        return self.factor is not None

    def now(self) -> datetime:
        if self.factor is None:
            return datetime.now(UTC)
        elapsed = (time.monotonic() - self._started) * self.factor
        return self._origin + timedelta(seconds=elapsed)


@dataclass
class Tally:
    """What the change feed has delivered so far; shared between the feed thread and readers."""

    recent: deque[feed.Change] = field(default_factory=lambda: deque(maxlen=RECENT_CHANGES))
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, cause)
    last_seq: int = 0
    _moments: deque[tuple[float, str, str]] = field(default_factory=deque)  # (monotonic, seg, kind)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, change: feed.Change) -> None:
        with self._lock:
            self.recent.append(change)
            self.counts[change.kind, change.cause] += 1
            self.last_seq = max(self.last_seq, change.seq)
            self._moments.append((time.monotonic(), change.segment, change.kind))

    def latest(self, n: int) -> list[feed.Change]:
        with self._lock:
            return list(self.recent)[-n:]

    def totals(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    def rates(self) -> dict[tuple[str, str], float]:
        """Enters and exits per second over the last `RATE_WINDOW` seconds, per segment."""
        horizon = time.monotonic() - RATE_WINDOW
        with self._lock:
            while self._moments and self._moments[0][0] < horizon:
                self._moments.popleft()
            counted = Counter((segment, kind) for _, segment, kind in self._moments)
        return {key: n / RATE_WINDOW for key, n in counted.items()}


@dataclass(frozen=True)
class Webhooks:
    """What the demo campaign did: from its deliveries, and as its receiver saw them."""

    sent: int
    pending: int
    skipped: int
    received: int  # distinct webhook-ids the receiver answered with 2xx
    verified: int  # of those, how many carried a valid signature


@dataclass
class Summary:
    seconds: float
    events: int
    profile_updates: int
    changes: Counter[tuple[str, str]]  # (kind, cause), read from the change log
    seen: Counter[tuple[str, str]]  # the same, as the change feed delivered them
    retried_writes: int
    sizes_start: dict[str, int]
    sizes_end: dict[str, int]
    pinned_at: datetime | None
    webhooks: Webhooks | None = None

    @property
    def timed_exits(self) -> int:
        return self.changes["exit", "time"]

    def total(self, kind: str) -> int:
        return sum(n for (k, _), n in self.changes.items() if k == kind)


SIZES = "SELECT segment, count(*) FROM segql.members GROUP BY segment"
CHANGES_SINCE = "SELECT kind, cause, count(*) FROM segql.changes WHERE seq > %s GROUP BY 1, 2"
LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM segql.changes"
# Changes the demo campaign has not planned yet, or deliveries due and not yet sent.
WEBHOOKS_LEFT = f"""
SELECT EXISTS (SELECT 1 FROM segql.deliveries WHERE status = 'pending' AND due_at <= segql.now())
    OR EXISTS (SELECT 1 FROM segql.changes c, segql.campaigns k
               WHERE k.name = '{DEMO_CAMPAIGN}' AND c.segment = k.segment AND c.kind = k.kind
                 AND c.cause IN ('event', 'profile', 'time')
                 AND NOT pg_visible_in_snapshot(c.xid, k.base))
"""
WEBHOOK_COUNTS = """
SELECT s.sent, s.pending, s.skipped, c.secret
FROM segql.campaign_stats s JOIN segql.campaigns c ON c.name = s.campaign
WHERE s.campaign = %s
"""


class Demo:
    """Live traffic into a prepared database, with the worker and the feed running beside it.

    Use as a context manager: `run_until(...)` (or `step()` in a loop of one's own), then
    `finish()` for the summary.
    """

    def __init__(
        self,
        prepared: Prepared,
        options: Options,
        stop: StopEvent,
        capture_logs: bool = False,
        receiver: Receiver | None = None,
    ) -> None:
        self.prepared = prepared
        self.receiver = receiver
        self._campaigns: CampaignRunner | None = None
        # Like the feed, the campaign senders stop last, once the last webhook is out.
        self._campaign_stop = StopEvent()
        self.options = options
        self.stop = stop
        self.clock = Clock(options.fast_clock)
        self.tally = Tally()
        self.sizes: dict[str, int] = {}
        self.trends: dict[str, deque[int]] = {
            name: deque(maxlen=TREND_SAMPLES) for name in prepared.segments
        }
        self.events_sent = 0
        self.profile_updates = 0
        self.retried_writes = 0
        self.errors: list[BaseException] = []
        # On a full screen a log line from the worker or the feed would tear the view: with
        # `capture_logs` they are kept here for the view to show instead.
        self.notices: deque[str] = deque(maxlen=20)
        self._log_handler = _NoticeHandler(self.notices) if capture_logs else None
        self._rng = random.Random(f"segql-demo-{options.seed}")
        self._new_yorkers = [p for p in prepared.profiles if p["traits"].get("city") == NEW_YORK]
        self._moment = self.clock.now()
        # Every event of a step carries the step's moment: on a pinned clock that is exactly the
        # time the database is at, so no live event lands in its future.
        self._stream = synth.live_events(options.seed, options.users, lambda: self._moment)
        # The feed stops after everything else, once it has delivered the last change.
        self._feed_stop = StopEvent()
        self._worker: threading.Thread | None = None
        self._feed: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._reader: psycopg.Connection | None = None
        self._baseline = 0
        self._started = 0.0
        self._next_sample = 0.0
        self._next_profile = 0.0
        self.sizes_start: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Demo:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        url = self.prepared.url
        if self._log_handler is not None:
            for name in LOGGERS:
                logger = logging.getLogger(name)
                logger.addHandler(self._log_handler)
                logger.propagate = False
        self._conn = psycopg.connect(url, application_name="segql demo traffic")
        self._reader = psycopg.connect(url, autocommit=True, application_name="segql demo")
        if self.clock.pinned:
            run.clock_set(self._conn, self.clock.now())
        # Nothing else writes yet, so every change after this seq belongs to the demo.
        self._baseline = int(self._one(LAST_SEQ))
        self.tally.last_seq = self._baseline
        self._sample()
        self.sizes_start = dict(self.sizes)
        # The subscription starts before any traffic, so the feed misses nothing of the demo.
        subscription = feed.subscribe(url, stop=self._feed_stop, poll_interval=1.0)
        self._feed = self._spawn("segql demo feed", self._follow, subscription)
        if not self.clock.pinned:
            self._worker = self._spawn("segql demo worker", self._work, url)
        if self.prepared.campaign is not None:
            # Beside the worker rather than in it: on a pinned clock there is no worker thread.
            settings = deliver.Settings(allow="127.0.0.1")
            self._campaigns = CampaignRunner(url, self._campaign_stop, 2, settings).start()
        self._started = time.monotonic()
        self._next_sample = self._started + SAMPLE_INTERVAL
        self._next_profile = self._started + PROFILE_UPDATE_INTERVAL

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._join_worker()
        self._feed_stop.set()
        self._stop_campaigns()
        self._campaign_stop.close()
        if self._feed is not None:
            self._feed.join(timeout=30)
        self._feed_stop.close()
        for conn in (self._conn, self._reader):
            if conn is not None:
                conn.close()
        if self._log_handler is not None:
            for name in LOGGERS:
                logger = logging.getLogger(name)
                logger.removeHandler(self._log_handler)
                logger.propagate = True

    def _stop_campaigns(self) -> None:
        self._campaign_stop.set()
        if self._campaigns is not None:
            self._campaigns.join()
            self._campaigns = None

    def _join_worker(self) -> None:
        if self._worker is not None:
            self._worker.join(timeout=30)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as exc:  # surfaced by step() in the main thread
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread

    def _follow(self, subscription: feed.Subscription) -> None:
        with subscription:
            for change in subscription:
                self.tally.add(change)

    def _work(self, url: str) -> None:
        run_worker(url, stop_event=self.stop, max_sleep=5.0, campaigns=False)

    # -- the loop --------------------------------------------------------------------------------

    def step(self) -> None:
        """Move the clock, send the events and profile updates now due, read sizes when due."""
        if self.errors:
            raise self.errors[0]
        now = time.monotonic()
        self._moment = self.clock.now()
        if self.clock.pinned:
            # Time moves only when the demo moves it, so the demo applies what fell due right
            # after the move and before the next events, as `segql clock set` and `segql tick`
            # would; a worker beside it would only learn of the move by polling.
            run.clock_set(self._traffic, self._moment)
            self._write(lambda: run.tick(self._traffic))
        due = int(self.options.rate * (now - self._started)) - self.events_sent
        if due > 0:
            batch = [next(self._stream) for _ in range(due)]
            self.events_sent += self._write(lambda: synth.copy_events(self._traffic, batch))
        if now >= self._next_profile and self._new_yorkers:
            self._next_profile += PROFILE_UPDATE_INTERVAL
            self._switch_plan()
        if now >= self._next_sample:
            self._next_sample += SAMPLE_INTERVAL
            self._sample()

    def run_until(self, deadline: float | None, on_step: Callable[[], None]) -> None:
        """Step every `BATCH_INTERVAL` until `stop` is set or `deadline` (seconds) has passed."""
        while not self.stop.is_set():
            if deadline is not None and self.elapsed >= deadline:
                break
            self.step()
            on_step()
            self.stop.wait(BATCH_INTERVAL)
        if self.errors:
            raise self.errors[0]

    def _switch_plan(self) -> None:
        """A New York customer upgrades to premium or steps down to pro: premium_new_york moves.

        Upgrade or downgrade is a coin toss, so the segment wanders both ways instead of only
        filling up with the many customers who are not premium yet.
        """
        upgrade = self._rng.random() < 0.5
        pool = [p for p in self._new_yorkers if (p["traits"].get("plan") == "premium") != upgrade]
        if not pool:
            return
        profile = self._rng.choice(pool)
        profile["traits"]["plan"] = "premium" if upgrade else "pro"
        self.profile_updates += self._write(lambda: synth.copy_profiles(self._traffic, [profile]))

    def _write(self, write: Callable[[], int]) -> int:
        """Run one committed write, again when the server picked it as a deadlock victim.

        A writer racing the worker's tick for the same users can be chosen to roll back; the
        write did nothing then, so sending it again is exact, as any Postgres client would.
        """
        attempt = 1
        while True:
            try:
                return write()
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                self._traffic.rollback()
                if attempt == WRITE_ATTEMPTS:
                    raise
                self.retried_writes += 1
                time.sleep(0.01 * attempt)
                attempt += 1

    def _sample(self) -> None:
        assert self._reader is not None
        counted: dict[str, int] = dict(self._reader.execute(SIZES).fetchall())
        self.sizes = {name: int(counted.get(name, 0)) for name in self.prepared.segments}
        for name, size in self.sizes.items():
            self.trends.setdefault(name, deque(maxlen=TREND_SAMPLES)).append(size)

    # -- reading ---------------------------------------------------------------------------------

    def finish(self) -> Summary:
        """Stop the traffic and the worker, let the feed catch up, then count from the change log.

        Nothing writes any more when the log is read, so the counts are exact; `seen` says what
        the feed delivered of them.
        """
        seconds = self.elapsed
        self.stop.set()
        self._join_worker()
        last = int(self._one(LAST_SEQ))
        deadline = time.monotonic() + FEED_CATCH_UP
        while self.tally.last_seq < last and time.monotonic() < deadline and not self.errors:
            time.sleep(0.05)
        self._feed_stop.set()
        if self._feed is not None:
            self._feed.join(timeout=30)
        self._catch_up_webhooks(last)
        assert self._reader is not None
        rows = self._reader.execute(CHANGES_SINCE, [self._baseline]).fetchall()
        self._sample()
        pinned_at = run.clock(self._reader)[0] if self.clock.pinned else None
        return Summary(
            seconds=seconds,
            events=self.events_sent,
            profile_updates=self.profile_updates,
            retried_writes=self.retried_writes,
            changes=Counter({(kind, cause): int(n) for kind, cause, n in rows}),
            seen=self.tally.totals(),
            sizes_start=self.sizes_start,
            sizes_end=dict(self.sizes),
            pinned_at=pinned_at,
            webhooks=self._webhooks(),
        )

    def _catch_up_webhooks(self, last_seq: int) -> None:
        """Give the senders a moment to plan up to `last_seq` and send what is due."""
        if self._campaigns is None:
            return
        deadline = time.monotonic() + FEED_CATCH_UP
        while time.monotonic() < deadline and not self.errors:
            if not self._one(WEBHOOKS_LEFT):
                break
            time.sleep(0.1)
        self._stop_campaigns()

    def _webhooks(self) -> Webhooks | None:
        name = self.prepared.campaign
        if name is None or self.receiver is None:
            return None
        assert self._reader is not None
        row = self._reader.execute(WEBHOOK_COUNTS, [name]).fetchone()
        assert row is not None
        sent, pending, skipped, secret = row
        got = self.receiver.delivered().values()
        verified = sum(
            sign.verify(secret, r.webhook_id, r.timestamp, r.body, r.signature) for r in got
        )
        return Webhooks(int(sent), int(pending), int(skipped), len(got), verified)

    @property
    def _traffic(self) -> psycopg.Connection:
        assert self._conn is not None
        return self._conn

    def _one(self, query: str) -> Any:
        assert self._reader is not None
        row = self._reader.execute(query).fetchone()
        return row[0] if row else None


class _NoticeHandler(logging.Handler):
    def __init__(self, notices: deque[str]) -> None:
        super().__init__(logging.WARNING)
        self.notices = notices

    def emit(self, record: logging.LogRecord) -> None:
        self.notices.append(f"{record.name}: {record.getMessage()}")


# -- display helpers -----------------------------------------------------------------------------

BLOCKS = "▁▂▃▄▅▆▇█"
MIN_SPAN = 4


def sparkline(values: Iterable[int]) -> str:
    """One block per value, from the lowest block for the smallest value upwards.

    The scale spans at least a tenth of the largest value (and at least `MIN_SPAN`), so that a
    segment of 67 that loses one member dips by a block instead of falling off a cliff.
    """
    values = list(values)
    if not values:
        return ""
    low, high = min(values), max(values)
    span = max(high - low, high / 10, MIN_SPAN)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - low) * top / span)] for v in values)
