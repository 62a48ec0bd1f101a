"""Segment definitions for the benchmarks, and the one place that deploys them through segql.

The definitions are the brief's examples with their thresholds and windows varied, so N segments
read N different features over the synthetic shop's events and traits, and the segql side of a
measurement does the work a real deployment would.

Deploying goes through `segql.deploy.deploy_files(conn, paths)`. Until the compiler provides it,
`deploy_segments` raises `CompilerUnavailable` and the scenarios report their segql side as
skipped, while still measuring the baseline.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from segql import synth

NOTIFY_CHANNEL = "segql"
SKIPPED = "skipped: compiler not available"


class CompilerUnavailable(Exception):
    """segql.deploy is not there (yet), so segments cannot be deployed."""


def _browsed_not_bought(i: int) -> str:
    hours = (24, 48, 72, 96)[i % 4]
    views = 2 + i % 4
    return (
        f"event_count('product_viewed', within => '{hours} hours') >= {views}\n"
        f"    AND NOT did('purchase', within => '{hours} hours')"
    )


def _big_spender(i: int) -> str:
    return f"event_sum('purchase', 'amount') > {50 * (1 + i % 8)}"


def _premium_in_city(i: int) -> str:
    plan = synth.PLANS[1 + i % 2]
    city = synth.CITIES[i % len(synth.CITIES)][0].replace("'", "''")
    return f"plan = '{plan}' AND city = '{city}'"


def _recent_cart(i: int) -> str:
    return f"did('add_to_cart', within => '{(1, 2, 6, 24)[i % 4]} hours')"


def _lapsed_buyer(i: int) -> str:
    return f"last_event_at('purchase') < now() - interval '{(7, 14, 30, 60)[i % 4]} days'"


KINDS: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("browsed_not_bought", _browsed_not_bought),
    ("big_spender", _big_spender),
    ("premium_city", _premium_in_city),
    ("recent_cart", _recent_cart),
    ("lapsed_buyer", _lapsed_buyer),
)


def definitions(n: int) -> str:
    """`n` CREATE SEGMENT statements cycling through the kinds above with varied parameters."""
    statements = []
    for i in range(n):
        kind, condition = KINDS[i % len(KINDS)]
        round_ = i // len(KINDS)
        statements.append(f"CREATE SEGMENT bench_{kind}_{i:03d} AS {condition(round_)};")
    return "\n\n".join(statements) + "\n"


def latency_definition() -> str:
    """One segment a user enters with a single add_to_cart: each round trip is one entry."""
    return "CREATE SEGMENT bench_latency AS did('add_to_cart', within => '1 hour');\n"


def availability() -> str | None:
    """None when segments can be deployed, else the reason to print in the segql column."""
    try:
        _deploy_files()
    except CompilerUnavailable:
        return SKIPPED
    return None


def deploy_segments(url: str, n: int) -> None:
    """Deploy `n` benchmark segments into the database at `url` (nothing to do for 0)."""
    if n:
        deploy_text(url, definitions(n))


def deploy_text(url: str, text: str) -> None:
    deploy_files = _deploy_files()
    with tempfile.TemporaryDirectory(prefix="segql-bench-") as folder:
        path = Path(folder) / "segments.sql"
        path.write_text(text, encoding="utf-8")
        with psycopg.connect(url) as conn:
            deploy_files(conn, [path])
            conn.commit()


def _deploy_files() -> Callable[[psycopg.Connection, list[Path]], object]:
    try:
        module = importlib.import_module("segql.deploy")
    except ImportError as exc:
        raise CompilerUnavailable(str(exc)) from None
    deploy_files = getattr(module, "deploy_files", None)
    if not callable(deploy_files):
        raise CompilerUnavailable("segql.deploy has no deploy_files(conn, paths)")
    return deploy_files  # type: ignore[no-any-return]
