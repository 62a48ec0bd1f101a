"""One user's page (`segql user ID`): segments, traits, recent events and pending timers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from segql.sqlfiles import query


@dataclass(frozen=True)
class UserPage:
    user_id: str
    segments: list[tuple[str, datetime, int]]  # (segment, member since, version)
    traits: dict[str, Any] | None  # None: no profile
    events: int
    recent: list[tuple[datetime, str, dict[str, Any]]]  # newest first
    timers: list[tuple[datetime, list[str]]] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.traits is not None or self.events > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "segments": [
                {"segment": s, "since": since.isoformat(), "version": v}
                for s, since, v in self.segments
            ],
            "traits": self.traits,
            "events": self.events,
            "recent_events": [
                {"ts": ts.isoformat(), "name": name, "props": props}
                for ts, name, props in self.recent
            ],
            "timers": [{"due_at": due.isoformat(), "segments": s} for due, s in self.timers],
        }


def page(conn: psycopg.Connection, user_id: str, recent: int = 10) -> UserPage:
    params = {"user_id": user_id, "limit": recent}
    profile = conn.execute(query("user_traits"), params).fetchone()
    count = conn.execute(query("user_event_count"), params).fetchone()
    return UserPage(
        user_id=user_id,
        segments=[(r[0], r[1], r[2]) for r in conn.execute(query("user_memberships"), params)],
        traits=profile[0] if profile else None,
        events=int(count[0]) if count else 0,
        recent=[(r[0], r[1], r[2]) for r in conn.execute(query("user_recent_events"), params)],
        timers=[(r[0], list(r[1])) for r in conn.execute(query("user_timers"), params)],
    )
