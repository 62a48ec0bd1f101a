"""Segment definitions for the benchmarks, and the one place that deploys them through segql.

The definitions are the brief's examples with their thresholds and windows varied, so N segments
read N different features over the synthetic shop's events and traits, and the segql side of a
measurement does the work a real deployment would.

Deploying goes through `segql.deploy.deploy(conn, segql.parse.parse_text(text, origin))`, the
same path as `segql deploy FILE`. Where segql has no compiler (an old checkout), deploying
raises `CompilerUnavailable` and the scenarios report their segql side as skipped, while still
measuring the baseline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

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


def _plan_in_city(i: int) -> str:
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
    ("plan_city", _plan_in_city),
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


def rfm_map() -> str:
    """The classic RFM map of examples/rfm.sql, to deploy beside the benchmark segments."""
    from segql.sqlfiles import resource_dir

    return "\n" + resource_dir("examples").joinpath("rfm.sql").read_text(encoding="utf-8")


def latency_definition() -> str:
    """One segment a user enters with a single add_to_cart: each round trip is one entry."""
    return "CREATE SEGMENT bench_latency AS did('add_to_cart', within => '1 hour');\n"


def availability() -> str | None:
    """None when segments can be deployed, else the reason to print in the segql column."""
    try:
        _api()
    except CompilerUnavailable:
        return SKIPPED
    return None


def deploy_segments(url: str, n: int) -> None:
    """Deploy `n` benchmark segments into the database at `url` (nothing to do for 0)."""
    if n:
        deploy_text(url, definitions(n))


def deploy_text(url: str, text: str) -> None:
    """Deploy CREATE SEGMENT statements exactly as `segql deploy FILE` would, then commit."""
    deploy, parse_text = _api()
    with psycopg.connect(url) as conn:
        deploy(conn, parse_text(text, "<benchmark segments>"))
        conn.commit()


def _api() -> tuple[Callable[..., object], Callable[[str, str], list[Any]]]:
    """segql's deploy entry point and parser; CompilerUnavailable while either is missing."""
    try:
        deploy_module = importlib.import_module("segql.deploy")
        parse_module = importlib.import_module("segql.parse")
    except ImportError as exc:
        raise CompilerUnavailable(str(exc)) from None
    deploy = getattr(deploy_module, "deploy", None)
    parse_text = getattr(parse_module, "parse_text", None)
    if not (callable(deploy) and callable(parse_text)):
        raise CompilerUnavailable("segql.deploy.deploy or segql.parse.parse_text is missing")
    return deploy, parse_text
