"""Reading scores: every user's score now, and one user's score term by term.

Both evaluate the model the way the full-recompute query does, at the database clock, so they
show what the segments reading score('<model>') see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from segql import generate, ir
from segql.check import Checker
from segql.models import store
from segql.models.spec import Trained
from segql.parse import parse_text

NOW = "WITH clk AS (SELECT segql.now() AS now)\n"
WITH_EVENTS = "(SELECT DISTINCT user_id FROM segql.events)"


def live_score(conn: psycopg.Connection, name: str) -> ir.Score:
    """The model's live version as the expression segments compile."""
    store.get(conn, name)
    models = store.load(conn)
    statements = parse_text(f"CREATE SEGMENT s AS score('{name}') IS NOT NULL;", "<scores>")
    condition = Checker(models=models).check(statements)[0].condition
    node = next(n for n in ir.walk(condition) if isinstance(n, ir.Score))
    return node


def scores(conn: psycopg.Connection, name: str) -> list[tuple[str, Decimal | None]]:
    """user_id and score of every user with at least one event, in user order."""
    score = live_score(conn, name)
    text = NOW + generate.values_sql([score], "segql.events", WITH_EVENTS) + "\nORDER BY 1"
    return [(r[0], r[1]) for r in conn.execute(text.encode())]


@dataclass(frozen=True)
class Contribution:
    condition: str
    weight: Decimal
    holds: bool

    def as_json(self) -> dict[str, Any]:
        return {"condition": self.condition, "weight": float(self.weight), "holds": self.holds}


@dataclass(frozen=True)
class ScoreExplanation:
    model: str
    version: int
    user_id: str
    now: datetime
    score: Decimal | None
    intercept: Decimal | None
    terms: list[Contribution]

    @property
    def logit(self) -> Decimal | None:
        if self.intercept is None:
            return None
        return self.intercept + sum((t.weight for t in self.terms if t.holds), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "user_id": self.user_id,
            "now": self.now.isoformat(),
            "score": None if self.score is None else float(self.score),
            "intercept": None if self.intercept is None else float(self.intercept),
            "logit": None if self.logit is None else float(self.logit),
            "terms": [t.as_json() for t in self.terms],
        }


def why(conn: psycopg.Connection, name: str, user_id: str) -> ScoreExplanation:
    """The user's score and each term: whether it holds now and what it adds to the logit."""
    score = live_score(conn, name)
    exprs: list[ir.Expr] = [score, *(ir.IsBool(t.condition, True) for t in score.terms)]
    users = "(SELECT %(user_id)s::text AS user_id)"
    text = "WITH clk AS (SELECT segql.now() AS now)\n" + generate.values_sql(
        exprs, "segql.events", users
    ).replace("SELECT u.user_id,", "SELECT clk.now, u.user_id,", 1)
    row = conn.execute(text.encode(), {"user_id": user_id}).fetchone()
    assert row is not None
    now, _, value, *holds = row
    terms = [
        Contribution(t.text, t.weight, bool(h)) for t, h in zip(score.terms, holds, strict=True)
    ]
    return ScoreExplanation(name, score.version, user_id, now, value, score.intercept, terms)


def trained(conn: psycopg.Connection, name: str) -> Trained | None:
    return store.load(conn).get(name)
