"""Warnings for names a definition reads that the data has never seen.

`did('purchse')` and `plan = premium` (a trait compared with a trait) compile: an event may
simply not have happened yet. But a name that no event or profile has ever had is most often a
typo, so compile and deploy warn (they never fail) with a did-you-mean from the names that exist.
The check reads the distinct names of the tables, so it only runs while they are small enough to
read whole; an empty table says nothing about typos and is skipped too.
"""

from __future__ import annotations

import difflib

import psycopg

from segql import ir
from segql.sqlfiles import query

MAX_ROWS = 1_000_000  # above this (the planner's estimate), reading every name costs too much


def warnings(conn: psycopg.Connection, segments: list[ir.Segment]) -> list[str]:
    events = _names(conn, "segql.events", "seen_event_names")
    traits = _names(conn, "segql.profiles", "seen_trait_keys")
    out: list[str] = []
    for seg in segments:
        for node in ir.walk(seg.condition):
            if isinstance(node, ir.Agg) and events and node.event not in (None, "*"):
                out.extend(_unseen(seg, "event", str(node.event), events, "segql.events"))
            elif isinstance(node, ir.Session) and events and node.event is not None:
                out.extend(_unseen(seg, "event", node.event, events, "segql.events"))
            elif isinstance(node, ir.Sequence) and events:
                for step in node.steps:
                    if step.event is not None:
                        out.extend(_unseen(seg, "event", step.event, events, "segql.events"))
            if isinstance(node, ir.Agg) and events and node.after is not None:
                out.extend(_unseen(seg, "event", node.after, events, "segql.events"))
            if isinstance(node, ir.Trait) and traits:
                out.extend(_unseen(seg, "trait", node.key, traits, "segql.profiles"))
    return list(dict.fromkeys(out))


def _unseen(seg: ir.Segment, what: str, name: str, seen: set[str], table: str) -> list[str]:
    if name in seen:
        return []
    head = f"{seg.source}: segment '{seg.name}': {what} '{name}' never occurs in {table}"
    folded = [s for s in seen if s.lower() == name.lower()]
    close = folded or difflib.get_close_matches(name, sorted(seen), n=1)
    if close:
        return [f"{head}; did you mean '{close[0]}'?"]
    if what == "trait":
        return [f"{head}; if '{name}' is a value, quote it: '{name}'"]
    return [head]


def _names(conn: psycopg.Connection, table: str, name: str) -> set[str]:
    row = conn.execute(query("table_estimate"), {"table": table}).fetchone()
    if row is not None and int(row[0]) > MAX_ROWS:
        return set()
    return {str(r[0]) for r in conn.execute(query(name))}
