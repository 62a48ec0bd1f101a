"""Candidate terms for a model, chosen from what the data has.

Every candidate is an ordinary condition, written as definition text: recency as `did(e, within
=> W)`, frequency as event counts (lifetime and over 30 days) against thresholds at the
population's quantiles, monetary as the lifetime sum of the event's main numeric prop, active
days and tenure over any event, numeric traits against their quantiles, low-cardinality traits
by value, timestamp traits by age. The thresholds come from the data before `cutoff`, so the
holdout period chooses nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

MAX_EVENT_NAMES = 8
MAX_TRAIT_VALUES = 8
SAMPLE = 5000
RECENCY_DAYS = (1, 7, 30, 90, 365)
ANY_RECENCY_DAYS = (1, 7, 30, 90)
TENURE_DAYS = (30, 90, 180, 365)
TRAIT_AGE_DAYS = (30, 90, 365)
ACTIVE_DAYS = (2, 4, 8)
MAX_COUNT = 63  # windowed counts against constants keep at most 64 newest timestamps
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?$"


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def name(key: str) -> str:
    return key if _PLAIN.match(key) else '"' + key.replace('"', '""') + '"'


def number(value: Any) -> str:
    d = Decimal(str(value)).normalize()
    return format(d, "f")


def candidates(conn: psycopg.Connection, cutoff: datetime) -> list[str]:
    """Condition texts, most general first; duplicates removed."""
    out: list[str] = []
    names = _event_names(conn, cutoff)
    for event in names:
        e = lit(event)
        out += [f"did({e}, within => '{d} days')" for d in RECENCY_DAYS]
        out += [f"event_count({e}) >= {k}" for k in _count_thresholds(conn, cutoff, event, None)]
        out += [
            f"event_count({e}, within => '30 days') >= {k}"
            for k in _count_thresholds(conn, cutoff, event, 30)
        ]
        prop = _numeric_prop(conn, cutoff, event)
        if prop is not None:
            out += [
                f"event_sum({e}, {lit(prop)}) >= {number(q)}"
                for q in _sum_thresholds(conn, cutoff, event, prop)
            ]
    out += [f"did('*', within => '{d} days')" for d in ANY_RECENCY_DAYS]
    out += [f"active_days('*', within => '30 days') >= {k}" for k in ACTIVE_DAYS]
    out += [f"first_event_at('*') < now() - interval '{d} days'" for d in TENURE_DAYS]
    out += _trait_candidates(conn)
    return list(dict.fromkeys(out))


def _event_names(conn: psycopg.Connection, cutoff: datetime) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM segql.events WHERE ts <= %s GROUP BY name "
        "ORDER BY count(*) DESC, name LIMIT %s",
        [cutoff, MAX_EVENT_NAMES],
    ).fetchall()
    return [r[0] for r in rows]


def _quantiles(values: list[Any], fractions: tuple[float, ...]) -> list[Any]:
    if not values:
        return []
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(f * len(ordered)))] for f in fractions]


def _count_thresholds(
    conn: psycopg.Connection, cutoff: datetime, event: str, days: int | None
) -> list[int]:
    window = "" if days is None else "AND ts > %(cutoff)s - make_interval(days => %(days)s)"
    rows = conn.execute(
        f"SELECT count(*) FROM segql.events WHERE name = %(name)s AND ts <= %(cutoff)s {window} "
        "GROUP BY user_id",
        {"name": event, "cutoff": cutoff, "days": days},
    ).fetchall()
    counts = [int(r[0]) for r in rows]
    picked = {min(MAX_COUNT, max(2, int(q))) for q in _quantiles(counts, (0.5, 0.75, 0.9))}
    return sorted({2, *picked}) if counts else []


def _numeric_prop(conn: psycopg.Connection, cutoff: datetime, event: str) -> str | None:
    """The numeric prop most of the event's rows carry, if any (e.g. a purchase's amount)."""
    row = conn.execute(
        "SELECT k.key FROM (SELECT props FROM segql.events WHERE name = %(name)s "
        "AND ts <= %(cutoff)s LIMIT %(sample)s) e, jsonb_each(e.props) k "
        "WHERE jsonb_typeof(k.value) = 'number' GROUP BY k.key "
        "HAVING count(*) * 2 >= (SELECT count(*) FROM (SELECT 1 FROM segql.events "
        "WHERE name = %(name)s AND ts <= %(cutoff)s LIMIT %(sample)s) s) "
        "ORDER BY count(*) DESC, k.key LIMIT 1",
        {"name": event, "cutoff": cutoff, "sample": SAMPLE},
    ).fetchone()
    return None if row is None else str(row[0])


def _sum_thresholds(
    conn: psycopg.Connection, cutoff: datetime, event: str, prop: str
) -> list[Decimal]:
    rows = conn.execute(
        "SELECT sum(segql.num(props -> %(prop)s)) FROM segql.events "
        "WHERE name = %(name)s AND ts <= %(cutoff)s GROUP BY user_id",
        {"name": event, "cutoff": cutoff, "prop": prop},
    ).fetchall()
    sums = [Decimal(r[0]) for r in rows if r[0] is not None and r[0] > 0]
    picked = {q.quantize(Decimal(1)) for q in _quantiles(sums, (0.25, 0.5, 0.75, 0.9))}
    return sorted(q for q in picked if q > 0)


def _trait_candidates(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT k.key, jsonb_typeof(k.value), count(DISTINCT k.value), "
        "bool_and(k.value #>> '{}' ~ %(ts)s) "
        "FROM (SELECT traits FROM segql.profiles ORDER BY user_id LIMIT %(sample)s) p, "
        "jsonb_each(p.traits) k GROUP BY 1, 2 ORDER BY 1, 2",
        {"sample": SAMPLE, "ts": _TIMESTAMP},
    ).fetchall()
    out: list[str] = []
    for key, kind, distinct, timestamps in rows:
        trait = name(key)
        if kind == "boolean":
            out.append(f"{trait} IS TRUE")
        elif kind == "number":
            out += [f"{trait} >= {number(q)}" for q in _trait_quantiles(conn, key)]
        elif kind == "string" and timestamps:
            out += [f"{trait} < now() - interval '{d} days'" for d in TRAIT_AGE_DAYS]
        elif kind == "string" and int(distinct) <= MAX_TRAIT_VALUES:
            values = conn.execute(
                "SELECT traits ->> %(key)s FROM segql.profiles WHERE jsonb_typeof(traits -> "
                "%(key)s) = 'string' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT %(n)s",
                {"key": key, "n": MAX_TRAIT_VALUES},
            ).fetchall()
            out += [f"{trait} = {lit(v[0])}" for v in values]
    return out


def _trait_quantiles(conn: psycopg.Connection, key: str) -> list[Decimal]:
    row = conn.execute(
        "SELECT percentile_disc(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY v) FROM "
        "(SELECT segql.num(traits -> %(key)s) AS v FROM segql.profiles) t WHERE v IS NOT NULL",
        {"key": key},
    ).fetchone()
    if row is None or row[0] is None:
        return []
    return sorted({Decimal(v) for v in row[0]})
