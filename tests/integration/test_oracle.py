"""The differential oracle: incremental membership equals the full-recompute query.

Hypothesis draws segments from the whole v1 grammar and streams of inserts, updates and deletes
of events and profiles in batches of 1 to 1,000, with clock moves (seconds to months, and moves
that land exactly on, just before and just after the next due timer) followed by a tick, and
moves back (seconds to days), which re-evaluate every user at the earlier instant. After
every step each segment's incremental membership must equal its full query, and replaying the
change log must give the current membership. After a clock move, the log replayed up to each
instant where a timer fell due or an event entered or left a window (and a microsecond before
it) must equal the full query at that instant: nothing but the clock changed in between, so this
checks that every timed change was logged, at its exact moment, and that no timer was missing.

Profiles: `ci` (default, 300 examples) and `thorough` (10,000):
    SEGQL_HYPOTHESIS_PROFILE=thorough pytest tests/integration/test_oracle.py
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from segql import db, deploy, rebuild, rfm, run
from segql.parse import parse_text

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "thorough", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "quick", max_examples=25, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = os.environ.get("SEGQL_HYPOTHESIS_PROFILE", "ci")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USERS = [f"u{i}" for i in range(8)]
EVENTS = ["view", "cart", "buy"]
WINDOWS = ["90 seconds", "30 minutes", "1 hour", "2 days", "1 week"]
DATA_TABLES = (
    "segql.events, segql.profiles, segql.users, segql.feature_state, segql.members, "
    "segql.changes, segql.timers, segql.user_groups, segql.rfm_cutpoints"
)

# -- the grammar -------------------------------------------------------------------------------

event = st.sampled_from([*EVENTS, "*"])
window = st.one_of(st.none(), st.sampled_from(WINDOWS))
prop_filter = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "amount > 5",
            "channel = 'web'",
            "channel IN ('web', 'app')",
            "NOT (amount <= 2)",
            "channel LIKE 'w%'",
            "amount IS NULL",
            "amount BETWEEN 2 AND 8",
        ]
    ),
)
cmp = st.sampled_from(["<", "<=", ">", ">=", "=", "<>"])
small = st.integers(0, 4)
ago = st.sampled_from(["1 minute", "1 hour", "1 day", "3 days", "10 days"])


@st.composite
def aggregate(draw: st.DrawFn) -> str:
    ev = draw(event)
    w = draw(window)
    within = f", within => '{w}'" if w else ""
    f = draw(prop_filter)
    filt = f" FILTER (WHERE {f})" if f else ""
    kind = draw(
        st.sampled_from(["count", "did", "sum", "avg", "min", "max", "first", "last", "days"])
    )
    if kind == "days":
        w = draw(st.sampled_from(WINDOWS))
        return f"active_days('{ev}', within => '{w}'){filt} {draw(cmp)} {draw(st.integers(0, 3))}"
    if kind == "count":
        # Counts near the number of events a user has in a window, BETWEEN included: windowed
        # counts compared with constants are read from the newest timestamps kept as state.
        if draw(st.booleans()):
            low = draw(small)
            high = low + draw(st.integers(0, 3))
            return f"event_count('{ev}'{within}){filt} BETWEEN {low} AND {high}"
        return f"event_count('{ev}'{within}){filt} {draw(cmp)} {draw(st.integers(0, 6))}"
    if kind == "did":
        return f"did('{ev}'{within}){filt}"
    if kind in ("sum", "avg", "min", "max"):
        return (
            f"event_{kind}('{ev}', 'amount'{within}){filt} {draw(cmp)} {draw(st.integers(0, 12))}"
        )
    fn = "first_event_at" if kind == "first" else "last_event_at"
    shape = draw(st.sampled_from(["ago", "null", "ahead", "since"]))
    if shape == "null":
        return f"{fn}('{ev}'{within}){filt} IS NULL"
    if shape == "ahead":
        return f"{fn}('{ev}'{within}){filt} > now()"
    if shape == "since":
        return f"now() - {fn}('{ev}'{within}){filt} {draw(cmp)} interval '{draw(ago)}'"
    return f"{fn}('{ev}'{within}){filt} {draw(cmp)} now() - interval '{draw(ago)}'"


trait = st.sampled_from(
    [
        "plan = 'premium'",
        "plan <> 'free'",
        "score > 5",
        "score * 2 >= 7",
        "city IN ('NY', 'SF')",
        "city LIKE 'N%'",
        "city IS NULL",
        "age BETWEEN 20 AND 40",
        "vip",
        "vip IS FALSE",
        "signed_up_at < now() - interval '2 days'",
        "now() - signed_up_at > interval '1 hour'",
        "trial_ends_at < now() + interval '3 days'",
        "trial_ends_at > now()",
        "trial_ends_at BETWEEN now() AND now() + interval '1 day'",
        "event_sum('buy', 'amount') / event_count('buy') > 4",
    ]
)


@st.composite
def rfm_leaf(draw: st.DrawFn) -> str:
    """An RFM score against a constant (or NULL): the cutpoints come from the last refresh."""
    ev = draw(event)
    w = draw(window)
    within = f", within => '{w}'" if w else ""
    score = draw(
        st.sampled_from(
            [
                f"rfm_recency('{ev}')",
                f"rfm_frequency('{ev}'{within})",
                f"rfm_monetary('{ev}', 'amount'{within})",
            ]
        )
    )
    shape = draw(st.sampled_from(["cmp", "cmp", "null", "in", "sum"]))
    if shape == "null":
        return f"{score} IS NULL"
    if shape == "in":
        return f"{score} IN ({draw(st.integers(1, 5))}, {draw(st.integers(1, 5))})"
    if shape == "sum":
        return f"{score} + rfm_recency('{ev}') >= {draw(st.integers(2, 10))}"
    return f"{score} {draw(cmp)} {draw(st.integers(1, 5))}"


# sequence(): 2 or 3 steps (a name may repeat), each with its own filter, optional span and
# lookback; the lookbacks are window widths, so next_edge lands on the instants chains leave.
@st.composite
def sequence_leaf(draw: st.DrawFn) -> str:
    steps = []
    for _ in range(draw(st.integers(2, 3))):
        f = draw(prop_filter)
        steps.append(f"'{draw(event)}'" + (f" FILTER (WHERE {f})" if f else ""))
    for arg in ("within", "since"):
        w = draw(window)
        if w:
            steps.append(f"{arg} => '{w}'")
    return f"sequence({', '.join(steps)})"


# Sessions: counts of sessions (any event or one name) and their average length in minutes,
# over window widths; session ids come from session_event_rows below.
@st.composite
def session_leaf(draw: st.DrawFn) -> str:
    w = draw(st.sampled_from(WINDOWS))
    if draw(st.booleans()):
        return f"avg_session_minutes(within => '{w}') {draw(cmp)} {draw(st.integers(0, 90))}"
    ev = draw(st.sampled_from(["", *(f"'{e}', " for e in EVENTS)]))
    return f"session_count({ev}within => '{w}') {draw(cmp)} {draw(st.integers(0, 4))}"


# -- purchase breadth: distinct_count, active_weeks, after => --------------------------------
#
# Distinct values of props that repeat, are null, missing or not numbers; ISO weeks; windows
# opened by the user's latest event of another name, alone or with within and FILTER.

after_event = st.sampled_from(EVENTS)


@st.composite
def breadth_leaf(draw: st.DrawFn) -> str:
    ev = draw(event)
    w = draw(window)
    f = draw(prop_filter)
    filt = f" FILTER (WHERE {f})" if f else ""
    after = f", after => '{draw(after_event)}'" if draw(st.booleans()) else ""
    within = f", within => '{w}'" if w else ""
    kind = draw(st.sampled_from(["distinct", "weeks", "after"]))
    if kind == "distinct":
        prop = draw(st.sampled_from(["channel", "amount"]))
        n = draw(st.integers(0, 4))
        return f"distinct_count('{ev}', '{prop}'{within}{after}){filt} {draw(cmp)} {n}"
    if kind == "weeks":
        w = draw(st.sampled_from(["2 days", "1 week"]))
        return f"active_weeks('{ev}', within => '{w}'{after}){filt} {draw(cmp)} {draw(small)}"
    after = f", after => '{draw(after_event)}'"
    shape = draw(st.sampled_from(["count", "did", "sum", "max", "last"]))
    if shape == "count":
        return f"event_count('{ev}'{within}{after}){filt} {draw(cmp)} {draw(small)}"
    if shape == "did":
        return f"did('{ev}'{within}{after}){filt}"
    if shape == "last":
        return f"last_event_at('{ev}'{within}{after}){filt} > now() - interval '{draw(ago)}'"
    fn = f"event_{shape}"
    return f"{fn}('{ev}', 'amount'{within}{after}){filt} {draw(cmp)} {draw(st.integers(0, 12))}"


# -- predictive scores ---------------------------------------------------------------------------
#
# score('m') of a fixed model inserted directly as a trained version (`oracle_model`): windowed
# and unwindowed counts, did, active days, comparisons of last/first events with now() and a
# trait, so the score moves on events, profiles and the clock.

ORACLE_MODEL = {
    "intercept": "-1.0",
    "terms": [
        {"weight": "1.2", "condition": "did('buy', within => '1 hour')"},
        {"weight": "0.8", "condition": "event_count('view') >= 2"},
        {"weight": "-0.9", "condition": "now() - last_event_at('cart') > interval '1 day'"},
        {"weight": "0.5", "condition": "plan = 'premium'"},
        {"weight": "0.3", "condition": "active_days('*', within => '2 days') >= 2"},
        {"weight": "0.4", "condition": "first_event_at('*') < now() - interval '3 days'"},
        {"weight": "0.7", "condition": "event_count('cart', within => '30 minutes') >= 2"},
    ],
}
score_leaf = st.builds(
    lambda op, t: f"score('m') {op} {t}",
    st.sampled_from(["<", "<=", ">", ">="]),
    st.sampled_from(["0.2", "0.3", "0.45", "0.5", "0.6", "0.75"]),
)


def oracle_model(conn: psycopg.Connection) -> None:
    """The model score_leaf reads, as `segql train` would have stored it."""
    conn.execute(
        "INSERT INTO segql.models (name, definition, horizon_seconds, fingerprint, version) "
        "VALUES ('m', %s, 86400, 'oracle', 1) ON CONFLICT DO NOTHING",
        ["CREATE MODEL m PREDICT did('buy') WITHIN '1 day'"],
    )
    conn.execute(
        "INSERT INTO segql.model_versions (name, version, definition, spec, report, clock) "
        "VALUES ('m', 1, '', %s, '{}', now()) ON CONFLICT DO NOTHING",
        [json.dumps(ORACLE_MODEL)],
    )
    conn.commit()


@st.composite
def condition(
    draw: st.DrawFn, earlier: list[str], leaf: st.SearchStrategy[str], depth: int = 0
) -> str:
    leaves = [leaf]
    if earlier:
        leaves.append(st.sampled_from(earlier).map(lambda n: f"in_segment('{n}')"))
    if depth >= 2 or draw(st.booleans()):
        return draw(st.one_of(*leaves))
    op = draw(st.sampled_from(["AND", "OR", "NOT"]))
    if op == "NOT":
        return f"NOT ({draw(condition(earlier, leaf, depth + 1))})"
    left = draw(condition(earlier, leaf, depth + 1))
    right = draw(condition(earlier, leaf, depth + 1))
    return f"({left} {op} {right})"


@st.composite
def definitions(draw: st.DrawFn, leaf: st.SearchStrategy[str] | None = None, most: int = 3) -> str:
    """1 to `most` segments, each of which may read the ones before it."""
    names: list[str] = []
    out = []
    for i in range(draw(st.integers(1, most))):
        name = f"s{i}"
        text = draw(condition(list(names), any_leaf if leaf is None else leaf))
        out.append(f"CREATE SEGMENT {name} AS {text};")
        names.append(name)
    return "\n".join(out)


# -- data --------------------------------------------------------------------------------------

offset = st.integers(-4 * 86400, 86400)  # seconds around the clock; future events allowed
amount = st.one_of(st.integers(0, 12), st.just("oops"), st.none())


@st.composite
def event_rows(
    draw: st.DrawFn, before: int = 4 * 86400, after: int = 86400
) -> list[tuple[str, str, int, dict[str, object]]]:
    """Rows stamped from `before` seconds before the clock to `after` seconds after it."""
    size = draw(st.one_of(st.integers(1, 6), st.integers(1, 40), st.sampled_from([300, 1000])))
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    rows = []
    for _ in range(size):
        props: dict[str, object] = {"channel": rnd.choice(["web", "app", "email"])}
        a = rnd.choice([0, 3, 5, 7, 9, 12, -4, -11, "oops", None])
        if a is not None:
            props["amount"] = a
        if rnd.random() < 0.3:
            props.update(geo_location(rnd))
        rows.append((rnd.choice(USERS), rnd.choice(EVENTS), rnd.randint(-before, after), props))
    if rows and rnd.random() < 0.3:
        # A burst: several events of one user at one instant, each counted on its own.
        user, name, at, props = rows[0]
        rows += [(user, name, at, props)] * rnd.randint(2, 6)
    return rows


@st.composite
def profile_rows(draw: st.DrawFn) -> list[tuple[str, dict[str, object]]]:
    users = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=4, unique=True))
    out = []
    for user in users:
        traits: dict[str, object] = {}
        for key, value in (
            ("plan", st.sampled_from(["premium", "free", "pro"])),
            ("score", st.one_of(st.integers(0, 10), st.just("n/a"))),
            ("city", st.sampled_from(["NY", "SF", "Nice", "LA"])),
            ("age", st.integers(15, 50)),
            ("vip", st.one_of(st.booleans(), st.just("yes"))),
            ("signed_up_at", offset),
            ("trial_ends_at", offset),
        ):
            if draw(st.booleans()):
                traits[key] = draw(value)
        out.append((user, traits))
    return out


step = st.one_of(
    st.tuples(st.just("events"), event_rows()),
    st.tuples(st.just("profiles"), profile_rows()),
    st.tuples(st.just("update_events"), st.integers(2, 5), st.integers(0, 4)),
    st.tuples(st.just("delete_events"), st.integers(2, 6), st.integers(0, 5)),
    st.tuples(st.just("delete_profile"), st.sampled_from(USERS)),
    st.tuples(
        st.just("clock"),
        st.one_of(st.integers(1, 600), st.integers(600, 86400), st.integers(86400, 90 * 86400)),
    ),
    st.tuples(st.just("rewind"), st.one_of(st.integers(1, 3600), st.integers(3600, 3 * 86400))),
    st.tuples(st.just("next_due"), st.sampled_from([-1, 0, 1])),
    # Onto the next instant an event enters or leaves a window, timer or not: where a timer
    # that should have been kept is missing.
    st.tuples(st.just("next_edge"), st.integers(0, 3), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("refresh")),
)


# -- geo: the last known location, distance_km, zones and in_zone ------------------------------
#
# Zones whose edges and vertices sit on the grid the events' and profiles' locations are drawn
# from, so points on edges, on vertices and on the horizontal lines through a concave vertex come
# up often; a circle whose edge passes near grid points; locations with one coordinate missing,
# a numeric string, text, or out of range. Every stream deploys these zones (see check_stream).

GEO_ZONES = """
CREATE ZONE sq AS POLYGON ((0 0, 2 0, 2 2, 0 2));
CREATE ZONE notch AS POLYGON ((0 0, 4 0, 4 4, 2 1, 0 4, 0 0));
CREATE ZONE ring AS CIRCLE (1, 1, 111.2);
"""
GEO_LONS = [-1, 0, 1, 1.5, 2, 3, 4, 4.0000001, "2", "east"]
GEO_LATS = [-1, 0, 0.5, 1, 2, 3.9999999, 4, 95]


def geo_location(rnd: random.Random) -> dict[str, object]:
    """A location for an event's props or a profile's traits; sometimes half of one."""
    out: dict[str, object] = {}
    shape = rnd.random()
    if shape < 0.9:
        out["lat"] = rnd.choice(GEO_LATS)
    if shape > 0.1:
        out["lon"] = rnd.choice(GEO_LONS)
    return out


@st.composite
def geo_leaf(draw: st.DrawFn) -> str:
    zone = draw(st.sampled_from(["sq", "notch", "ring"]))
    kind = draw(st.sampled_from(["in", "distance", "null", "filter_in", "filter_distance"]))
    if kind == "in":
        return f"in_zone('{zone}')"
    if kind == "distance":
        km = draw(st.sampled_from([0, 100, 111.2, 157.25, 400]))
        return f"distance_km(1, 1) {draw(cmp)} {km}"
    if kind == "null":
        return "distance_km(0, -1) IS NULL"
    ev, w = draw(event), draw(window)
    within = f", within => '{w}'" if w else ""
    if kind == "filter_in":
        return f"did('{ev}'{within}) FILTER (WHERE in_zone('{zone}'))"
    return (
        f"event_count('{ev}'{within}) FILTER (WHERE distance_km(2, 2) < 160) "
        f"{draw(cmp)} {draw(small)}"
    )


@st.composite
def geo_event_rows(draw: st.DrawFn) -> list[tuple[str, str, int, dict[str, object]]]:
    rows = draw(event_rows())
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    return [(u, n, at, {**props, **geo_location(rnd)}) for u, n, at, props in rows]


@st.composite
def geo_profile_rows(draw: st.DrawFn) -> list[tuple[str, dict[str, object]]]:
    rows = draw(profile_rows())
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    return [(u, {**t, **geo_location(rnd)}) if rnd.random() < 0.7 else (u, t) for u, t in rows]


# The leaf union: every construct's leaves.
any_leaf = st.one_of(
    aggregate(),
    trait,
    score_leaf,
    geo_leaf(),
    breadth_leaf(),
    sequence_leaf(),
    session_leaf(),
    rfm_leaf(),
)

geo_step = st.one_of(
    step,
    st.tuples(st.just("events"), geo_event_rows()),
    st.tuples(st.just("profiles"), geo_profile_rows()),
)


@settings(settings.get_profile(PROFILE))
@given(
    text=definitions(st.one_of(geo_leaf(), geo_leaf(), any_leaf)),
    steps=st.lists(geo_step, min_size=1, max_size=16),
)
def test_geo_incremental_equals_full_query(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


# -- the harness -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle_url(server_url: str, template_url: str) -> Iterator[str]:
    name = f"segql_oracle_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(db.database_name(template_url))
            )
        )
    try:
        yield db.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _ts(clock: datetime, seconds: int) -> str:
    return (clock + timedelta(seconds=seconds)).isoformat()


def apply(conn: psycopg.Connection, clock: datetime, action: tuple) -> datetime:  # type: ignore[type-arg]
    kind = action[0]
    if kind == "events":
        rows = action[1]
        conn.execute(
            "INSERT INTO segql.events (user_id, name, ts, props) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::jsonb[])",
            [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [_ts(clock, r[2]) for r in rows],
                [json.dumps(r[3]) for r in rows],
            ],
        )
    elif kind == "profiles":
        traits = []
        for _, t in action[1]:
            t = dict(t)
            for key in ("signed_up_at", "trial_ends_at"):
                if key in t:
                    t[key] = _ts(clock, int(t[key]))  # type: ignore[arg-type]
            traits.append(json.dumps(t))
        conn.execute(
            "INSERT INTO segql.profiles (user_id, traits) "
            "SELECT * FROM unnest(%s::text[], %s::jsonb[]) "
            "ON CONFLICT (user_id) DO UPDATE SET traits = segql.profiles.traits || excluded.traits",
            [[u for u, _ in action[1]], traits],
        )
    elif kind == "update_events":
        conn.execute(
            "UPDATE segql.events SET name = CASE WHEN id %% 2 = 0 THEN 'buy' ELSE name END, "
            "ts = ts - interval '1 hour', props = props || '{\"amount\": 9}' "
            "WHERE id %% %s = %s",
            [action[1], action[2] % action[1]],
        )
    elif kind == "delete_events":
        conn.execute(
            "DELETE FROM segql.events WHERE id %% %s = %s", [action[1], action[2] % action[1]]
        )
    elif kind == "latest":  # the latest event of a name at or before the clock, per user
        latest = (
            "SELECT DISTINCT ON (user_id) id FROM segql.events WHERE name = %s AND ts <= %s "
            "ORDER BY user_id, ts DESC, id DESC"
        )
        if action[2] == 0:
            conn.execute(f"DELETE FROM segql.events WHERE id IN ({latest})", [action[1], clock])
        else:
            conn.execute(
                "UPDATE segql.events SET ts = ts + %s * interval '1 minute' "
                f"WHERE id IN ({latest})",
                [action[2], action[1], clock],
            )
    elif kind == "delete_profile":
        conn.execute("DELETE FROM segql.profiles WHERE user_id = %s", [action[1]])
    elif kind == "clock":
        clock = clock + timedelta(seconds=action[1])
        run.clock_set(conn, clock)
    elif kind == "rewind":
        clock = clock - timedelta(seconds=action[1])
        run.clock_set(conn, clock)
    elif kind == "next_due":
        row = conn.execute("SELECT min(due_at) FROM segql.timers").fetchone()
        if row and row[0] is not None:
            target = row[0] + timedelta(microseconds=action[1])
            if target > clock:
                clock = target
                run.clock_set(conn, clock)
    elif kind == "refresh":
        rfm.refresh(conn)
    elif kind == "next_cut":
        row = conn.execute(
            "SELECT DISTINCT e.ts + d.width FROM segql.events e, segql.rfm_cutpoints r, "
            "unnest(r.durations) AS d(width) WHERE e.ts + d.width > %s ORDER BY 1 "
            "OFFSET %s LIMIT 1",
            [clock, action[1]],
        ).fetchone()
        if row and row[0] is not None:
            target = row[0] + timedelta(microseconds=action[2])
            if target > clock:
                clock = target
                run.clock_set(conn, clock)
    elif kind == "next_edge":
        row = conn.execute(
            "SELECT DISTINCT e.ts + w.width FROM segql.events e, "
            "unnest(%s::interval[]) AS w(width) WHERE e.ts + w.width > %s ORDER BY 1 "
            "OFFSET %s LIMIT 1",
            [["0 seconds", *WINDOWS], clock, action[1]],
        ).fetchone()
        if row and row[0] is not None:
            target = row[0] + timedelta(microseconds=action[2])
            if target > clock:
                clock = target
                run.clock_set(conn, clock)
    conn.commit()
    run.tick(conn)
    return clock


@dataclass
class Baseline:
    """Membership right after the clock last went back, and the log's last seq then."""

    seq: int = 0
    members: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def now(cls, conn: psycopg.Connection, names: list[str]) -> Baseline:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM segql.changes").fetchone()
        members = {name: {u for u, _ in deploy.members(conn, name)} for name in names}
        conn.rollback()
        return cls(int(row[0]) if row else 0, members)


def due_between(conn: psycopg.Connection, after: datetime, upto: datetime) -> list[datetime]:
    """Instants in (after, upto] where a timer is due, before the tick that processes them."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT due_at FROM segql.timers WHERE due_at > %s AND due_at <= %s "
            "ORDER BY 1",
            [after, upto],
        )
    ]


def assert_exact_between(
    conn: psycopg.Connection,
    names: list[str],
    before: datetime,
    clock: datetime,
    instants: list[datetime],
    where: str,
    base: Baseline,
) -> None:
    """The log replayed up to each instant in (before, clock] where a timer was due, where the
    tick logged a change, or where an event enters or leaves a window, equals the full query
    at that instant. The replay starts from `base`: after the clock went back, changes logged
    before were about a future the clock has left."""
    logged = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT at FROM segql.changes WHERE cause = 'time' AND at > %s AND seq > %s",
            [before, base.seq],
        )
    ]
    every = sorted(set(instants) | set(logged))
    # The first and last few are where a wrong order or a missed chain would show; all of them
    # would cost a full query per segment per instant.
    picked = every if len(every) <= 8 else every[:4] + every[-4:]
    # Instants where a window's contents change whether or not a timer was kept for them: a
    # missing timer shows only here.
    edges = sorted(
        {
            r[0]
            for r in conn.execute(
                "SELECT e.ts + w.width FROM segql.events e, "
                "(SELECT unnest(%s::interval[]) UNION SELECT unnest(durations) "
                "FROM segql.rfm_cutpoints) AS w(width) WHERE e.ts + w.width > %s "
                "AND e.ts + w.width <= %s",
                [["0 seconds", *WINDOWS], before, clock],
            )
        }
        - set(picked)
    )
    step = max(1, len(edges) // 6)
    picked += edges[::step][:6]
    for instant in picked:
        for at in (instant - timedelta(microseconds=1), instant):
            conn.execute("SELECT set_config('segql.now', %s, true)", [at.isoformat()])
            for name in names:
                replay = dict.fromkeys(base.members.get(name, set()), True)
                for user, kind in conn.execute(
                    "SELECT user_id, kind FROM segql.changes WHERE segment = %s AND at <= %s "
                    "AND seq > %s ORDER BY seq",
                    [name, at, base.seq],
                ):
                    replay[user] = kind == "enter"
                members = {u for u, inside in replay.items() if inside}
                full = deploy.full_members(conn, name)
                assert members == full, (
                    f"{where}: {name} at {at.isoformat()}: log-only {sorted(members - full)}, "
                    f"full-only {sorted(full - members)}"
                )
            conn.rollback()


def assert_exact(conn: psycopg.Connection, names: list[str], where: str) -> None:
    replay: dict[tuple[str, str], bool] = {}
    for segment, user, kind in conn.execute(
        "SELECT segment, user_id, kind FROM segql.changes ORDER BY seq"
    ):
        replay[(segment, user)] = kind == "enter"
    for name in names:
        incremental = {u for u, _ in deploy.members(conn, name)}
        full = deploy.full_members(conn, name)
        assert incremental == full, (
            f"{where}: {name}: incremental-only {sorted(incremental - full)}, "
            f"full-only {sorted(full - incremental)}"
        )
        logged = {u for (s, u), inside in replay.items() if s == name and inside}
        assert logged == incremental, f"{where}: {name}: change log replays to {sorted(logged)}"
    conn.rollback()


# -- a grammar of what moves with the clock alone ------------------------------------------------
#
# Windowed counts, did and active_days with short windows, and comparisons with now(), under
# AND/OR/NOT, with events stamped around the clock and the clock stepped onto window edges: the
# cases where segql decides that a user's outcome is settled and keeps no timer.

short_window = st.sampled_from(["90 seconds", "30 minutes", "1 hour", "2 hours"])


@st.composite
def timed_leaf(draw: st.DrawFn) -> str:
    ev, w = draw(st.sampled_from(EVENTS)), draw(short_window)
    kind = draw(st.sampled_from(["count", "did", "days", "last", "trait", "sum"]))
    if kind == "count":
        return f"event_count('{ev}', within => '{w}') {draw(cmp)} {draw(st.integers(0, 3))}"
    if kind == "did":
        return f"did('{ev}', within => '{w}')"
    if kind == "days":
        return f"active_days('{ev}', within => '{w}') {draw(cmp)} {draw(st.integers(0, 1))}"
    if kind == "sum":
        return f"event_sum('{ev}', 'amount', within => '{w}') {draw(cmp)} 5"
    if kind == "last":
        ago = draw(st.sampled_from(["1 minute", "1 hour"]))
        return f"last_event_at('{ev}') {draw(cmp)} now() - interval '{ago}'"
    return draw(
        st.sampled_from(
            [
                "trial_ends_at < now() + interval '1 hour'",
                "signed_up_at > now() - interval '30 minutes'",
                "trial_ends_at > now()",
            ]
        )
    )


near = 2 * 3600
timed_step = st.one_of(
    st.tuples(st.just("events"), event_rows(before=near, after=near)),
    st.tuples(st.just("profiles"), profile_rows()),
    st.tuples(st.just("clock"), st.integers(1, 3 * 3600)),
    st.tuples(st.just("rewind"), st.one_of(st.integers(1, 3600), st.integers(3600, 3 * 86400))),
    st.tuples(st.just("next_due"), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("next_edge"), st.integers(0, 3), st.sampled_from([-1, 0, 1])),
)


@settings(settings.get_profile(PROFILE))
@given(text=definitions(timed_leaf(), most=2), steps=st.lists(timed_step, min_size=1, max_size=12))
def test_timers_are_exact(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


@st.composite
def session_event_rows(draw: st.DrawFn) -> list[tuple[str, str, int, dict[str, object]]]:
    """Event rows near the clock, some carrying one of a few session ids."""
    rows = draw(event_rows(before=near, after=near))
    ids = draw(st.lists(st.sampled_from([None, "s1", "s2"]), min_size=1, max_size=5))
    out = []
    for i, (user, name, at, props) in enumerate(rows):
        sid = ids[i % len(ids)]
        out.append((user, name, at, props if sid is None else {**props, "session_id": sid}))
    return out


session_step = st.one_of(st.tuples(st.just("events"), session_event_rows()), timed_step)


@settings(settings.get_profile(PROFILE))
@given(
    text=definitions(st.one_of(session_leaf(), sequence_leaf(), timed_leaf()), most=2),
    steps=st.lists(session_step, min_size=1, max_size=12),
)
def test_session_timers_are_exact(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """Sessions near the clock, with and without session ids, as events leave windows."""
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


@settings(settings.get_profile(PROFILE))
@given(
    text=definitions(st.one_of(sequence_leaf(), timed_leaf()), most=2),
    steps=st.lists(timed_step, min_size=1, max_size=12),
)
def test_sequence_timers_are_exact(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """Sequences near the clock: future steps, chains leaving `since`, under AND/OR/NOT."""
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


@settings(settings.get_profile(PROFILE))
@given(text=definitions(), steps=st.lists(step, min_size=1, max_size=20))
def test_incremental_equals_full_query(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    # A connection per example: one session that deploys thousands of programs keeps growing
    # caches of dropped functions and slows down, which is about the test, not segql.
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


# -- RFM scores --------------------------------------------------------------------------------
#
# Scores against the cutpoints of the last refresh, with refreshes as steps and the clock
# stepped onto the instants where a user's time since the last event reaches a recency
# cutpoint. Every stream starts with events and a refresh, so that the cutpoints are not empty.

rfm_step = st.one_of(
    st.tuples(st.just("events"), event_rows()),
    st.tuples(st.just("update_events"), st.integers(2, 5), st.integers(0, 4)),
    st.tuples(st.just("delete_events"), st.integers(2, 6), st.integers(0, 5)),
    st.tuples(st.just("clock"), st.one_of(st.integers(1, 3600), st.integers(3600, 5 * 86400))),
    st.tuples(st.just("rewind"), st.one_of(st.integers(1, 3600), st.integers(3600, 3 * 86400))),
    st.tuples(st.just("next_due"), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("next_cut"), st.integers(0, 3), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("refresh")),
)


@settings(settings.get_profile(PROFILE))
@given(
    text=definitions(rfm_leaf(), most=3),
    first=event_rows(),
    steps=st.lists(rfm_step, min_size=1, max_size=14),
)
def test_rfm_scores_are_exact(oracle_url: str, text: str, first: list, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, [("events", first), ("refresh",), *steps])


# -- tiers -------------------------------------------------------------------------------------
#
# CREATE TIERS over the whole grammar (RFM scores included), with a segment that reads a tier:
# each tier equals its full query, so a user is in at most one tier, the first that holds.


@st.composite
def tier_definitions(draw: st.DrawFn) -> str:
    count = draw(st.integers(2, 4))
    tiers = [f"t{i} WHEN {draw(condition([], any_leaf))}" for i in range(count)]
    text = f"CREATE TIERS ladder AS {', '.join(tiers)};"
    if draw(st.booleans()):
        text += f"\nCREATE SEGMENT s0 AS in_segment('t{draw(st.integers(0, count - 1))}') OR "
        text += f"{draw(any_leaf)};"
    return text


@settings(settings.get_profile(PROFILE))
@given(text=tier_definitions(), steps=st.lists(st.one_of(step, rfm_step), min_size=1, max_size=14))
def test_tiers_are_exact(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)
        rows = conn.execute(
            "SELECT user_id FROM segql.members WHERE segment LIKE 't%' GROUP BY 1 "
            "HAVING count(*) > 1"
        ).fetchall()
        assert rows == [], f"users in more than one tier: {rows}"


def check_stream(conn: psycopg.Connection, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    # Each example deploys over the one before it, so a failure that passes on replay may
    # depend on that deployment: name it with the failure.
    previous = [r[0] for r in conn.execute("SELECT definition FROM segql.segments ORDER BY name")]
    try:
        _check_stream(conn, text, steps)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ndeployed before this example: {previous}") from exc


def _check_stream(conn: psycopg.Connection, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    conn.execute(f"TRUNCATE {DATA_TABLES}")
    clock = T0
    run.clock_set(conn, clock)
    oracle_model(conn)
    deploy.deploy(conn, parse_text(GEO_ZONES + text, "oracle.sql"), prune=True)
    names = [s.name for s in deploy.list_segments(conn)]
    assert_exact(conn, names, "after deploy")
    base = Baseline()
    for i, action in enumerate(steps):
        before, instants = clock, []
        if action[0] == "clock":
            instants = due_between(conn, before, before + timedelta(seconds=action[1]))
            conn.rollback()
        clock = apply(conn, clock, action)
        where = f"step {i} {action[0]} at {clock.isoformat()}"
        assert_exact(conn, names, where)
        if clock > before:
            assert_exact_between(conn, names, before, clock, instants, where, base)
        elif clock < before:
            base = Baseline.now(conn, names)


def test_redeploy_recompiles_an_unchanged_reader_of_moved_state(oracle_url: str) -> None:
    """Found by the thorough sequence grammar: redefining s0 moved the state of the did('buy')
    that s1 also reads (s0 no longer needed its two newest timestamps), and s1, unchanged, kept
    a function reading the old state's id."""
    s1 = (
        "CREATE SEGMENT s1 AS NOT in_segment('s0') "
        "AND did('view', within => '2 hours') AND did('buy', within => '1 hour');"
    )
    before = "CREATE SEGMENT s0 AS event_count('buy', within => '2 hours') < 1;\n" + s1
    after = "CREATE SEGMENT s0 AS NOT sequence('view', 'view') AND did('buy', within => '1 hour');"
    events = [
        ("u6", "buy", -2312, {}),
        ("u6", "view", -3632, {"channel": "app"}),
        ("u6", "view", -3442, {"channel": "app"}),
    ]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, before, [])
        check_stream(conn, f"{after}\n{s1}", [("events", events)])
        assert {u for u, _ in deploy.members(conn, "s1")} == {"u6"}


def test_redeploy_repairs_a_function_left_reading_moved_state(oracle_url: str) -> None:
    """A deployment an earlier release left with such a stale function is repaired by the next
    deploy, even of the same files: the function is created again and the segment evaluated
    again, its missed members logged."""
    text = (
        "CREATE SEGMENT s0 AS did('view');\n"
        "CREATE SEGMENT s1 AS in_segment('s0') AND did('buy', within => '1 hour');"
    )
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, [])
        row = conn.execute("SELECT id FROM segql.features WHERE spec->>'event' = 'buy'")
        (fid,) = row.fetchone()  # type: ignore[misc]
        stale = conn.execute(
            "UPDATE segql.segment_versions SET compiled = replace(compiled, %s, %s) "
            "WHERE (name, version) = (SELECT name, version FROM segql.segments WHERE name = 's1') "
            "RETURNING compiled",
            [f"feature_id = {fid} ", "feature_id = 0 "],
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(stale.encode())
        apply(conn, T0, ("events", [("u1", "view", -60, {}), ("u1", "buy", -30, {})]))
        conn.commit()
        assert deploy.members(conn, "s1") == []
        result = deploy.deploy(conn, parse_text(GEO_ZONES + text, "oracle.sql"), prune=True)
        assert (result.changed, result.recompiled) == ([], ["s1"])
        assert {u for u, _ in deploy.members(conn, "s1")} == {"u1"}
        assert_exact(conn, ["s0", "s1"], "after the repair")


def test_redeploy_logs_the_difference(oracle_url: str) -> None:
    """A changed definition is backfilled as a new version; only the difference is logged."""
    with psycopg.connect(oracle_url) as conn:
        check_redeploy(conn)


def check_redeploy(conn: psycopg.Connection) -> None:
    conn.execute(f"TRUNCATE {DATA_TABLES}")
    run.clock_set(conn, T0)
    deploy.deploy(
        conn, parse_text("CREATE SEGMENT big AS event_count('buy') >= 2;", "a.sql"), prune=True
    )
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts) VALUES "
        "('a', 'buy', %s), ('a', 'buy', %s), ('b', 'buy', %s), ('c', 'view', %s)",
        [T0, T0, T0, T0],
    )
    conn.commit()
    assert {u for u, _ in deploy.members(conn, "big")} == {"a"}
    result = deploy.deploy(
        conn, parse_text("CREATE SEGMENT big AS event_count('buy') >= 1;", "a.sql"), prune=True
    )
    assert result.changed == ["big"]
    rows = conn.execute(
        "SELECT user_id, kind, cause, version FROM segql.changes WHERE cause = 'redeploy'"
    ).fetchall()
    assert rows == [("b", "enter", "redeploy", 2)]
    assert_exact(conn, ["big"], "after redeploy")


@settings(settings.get_profile("quick"))
@given(text=definitions(), steps=st.lists(step, min_size=1, max_size=12))
def test_rebuild_equals_incremental_state(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """After a random stream, recomputing all state from the events changes nothing."""
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)
        before = _derived_state(conn)
        result = rebuild.rebuild(conn)
        assert (result.enters, result.exits) == (0, 0)
        assert _derived_state(conn) == before


def test_rebuild_repairs_state_and_logs_the_difference(oracle_url: str) -> None:
    with psycopg.connect(oracle_url) as conn:
        conn.execute(f"TRUNCATE {DATA_TABLES}")
        run.clock_set(conn, T0)
        text = "CREATE SEGMENT big AS event_sum('buy', 'amount') > 5;"
        deploy.deploy(conn, parse_text(text, "a.sql"), prune=True)
        conn.execute(
            "INSERT INTO segql.events (user_id, name, ts, props) VALUES "
            "('a', 'buy', %s, '{\"amount\": 9}'), ('b', 'buy', %s, '{\"amount\": 1}')",
            [T0, T0],
        )
        conn.execute("UPDATE segql.feature_state SET sum = sum + 10 WHERE user_id = 'b'")
        conn.execute("DELETE FROM segql.members WHERE user_id = 'a'")
        conn.commit()
        result = rebuild.rebuild(conn)
        assert (result.users, result.enters, result.exits) == (2, 1, 0)
        rows = conn.execute(
            "SELECT user_id, kind, cause FROM segql.changes WHERE cause = 'rebuild'"
        ).fetchall()
        assert rows == [("a", "enter", "rebuild")]
        sums = conn.execute("SELECT user_id, sum FROM segql.feature_state ORDER BY 1").fetchall()
        assert sums == [("a", 9), ("b", 1)]
        conn.execute(
            "INSERT INTO segql.events (user_id, name, ts, props) VALUES "
            "('b', 'buy', %s, '{\"amount\": 2}')",
            [T0],
        )
        conn.commit()
        assert_exact(conn, ["big"], "after rebuild")


def _derived_state(conn: psycopg.Connection) -> tuple[list[tuple], ...]:  # type: ignore[type-arg]
    return tuple(
        conn.execute(q).fetchall()
        for q in (
            "SELECT segment, user_id, since FROM segql.members ORDER BY 1, 2",
            "SELECT segment, user_id, due_at FROM segql.timers ORDER BY 1, 2",
            "SELECT f.key, s.user_id, s.cnt, s.vcnt, s.sum, s.min, s.max, s.first_ts, s.last_ts, "
            "s.recent, s.loc_id, s.lat, s.lon "
            "FROM segql.feature_state s JOIN segql.features f ON f.id = s.feature_id "
            "ORDER BY 1, 2",
            "SELECT user_id FROM segql.users ORDER BY 1",
        )
    )


# Scores next to the timed grammar: the model's terms hold windows of 30 minutes and an hour and
# comparisons with now(), so clock moves onto window edges change scores with no event.
@settings(
    settings.get_profile(PROFILE),
    max_examples=max(10, (settings.get_profile(PROFILE).max_examples or 100) // 3),
)
@given(
    text=definitions(st.one_of(timed_leaf(), score_leaf), most=2),
    steps=st.lists(timed_step, min_size=1, max_size=12),
)
def test_scores_are_exact_in_time(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)


# -- purchase breadth, timed: the latest bounding event deleted or moved, same-instant events -----


@st.composite
def same_instant_rows(draw: st.DrawFn) -> list[tuple[str, str, int, dict[str, object]]]:
    """Events of several names at a few shared instants, so some fall on their bound's ts."""
    rows = draw(event_rows(before=near, after=near))
    at = rows[0][2]
    users = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=3))
    names = draw(st.lists(st.sampled_from(EVENTS), min_size=2, max_size=5))
    channels = ["web", "app", "web", "email"]
    return rows + [
        (u, n, at, {"channel": channels[i % 4], "amount": i % 3})
        for u in users
        for i, n in enumerate(names)
    ]


breadth_step = st.one_of(
    st.tuples(st.just("events"), same_instant_rows()),
    st.tuples(st.just("events"), event_rows(before=near, after=near)),
    st.tuples(st.just("latest"), st.sampled_from(EVENTS), st.sampled_from([0, 0, -30, 30, 180])),
    st.tuples(st.just("update_events"), st.integers(2, 5), st.integers(0, 4)),
    st.tuples(st.just("delete_events"), st.integers(2, 6), st.integers(0, 5)),
    st.tuples(st.just("clock"), st.one_of(st.integers(1, 3 * 3600), st.integers(86400, 9 * 86400))),
    st.tuples(st.just("rewind"), st.integers(1, 3 * 3600)),
    st.tuples(st.just("next_due"), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("next_edge"), st.integers(0, 3), st.sampled_from([-1, 0, 1])),
)


@settings(settings.get_profile(PROFILE))
@given(
    text=definitions(breadth_leaf(), most=2), steps=st.lists(breadth_step, min_size=1, max_size=12)
)
def test_breadth_is_exact(oracle_url: str, text: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    with psycopg.connect(oracle_url) as conn:
        check_stream(conn, text, steps)
