"""examples/journeys.sql against hand-made users, as test_brief_examples does for the others."""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files

import psycopg
import pytest
from test_brief_examples import DAY, SECOND, T0, Shop  # same folder: on sys.path under pytest

from segql import deploy
from segql.check import check

MINUTE = timedelta(minutes=1)


@pytest.fixture
def shop(conn: psycopg.Connection) -> Shop:
    return Shop(conn, "journeys.sql")


def test_every_journey_is_commented() -> None:
    path = files("segql.examples").joinpath("journeys.sql")
    for segment in check(deploy.load_files([str(path)])):
        assert segment.comment, segment.name


def test_viewed_a_product_then_added_to_cart_within_10_minutes(shop: Shop) -> None:
    shop.event("quick", "product_viewed", T0 - 20 * MINUTE, product_id="p-1")
    shop.event("quick", "add_to_cart", T0 - 12 * MINUTE, product_id="p-1")
    shop.event("slow", "product_viewed", T0 - 40 * MINUTE, product_id="p-2")
    shop.event("slow", "add_to_cart", T0 - 20 * MINUTE, product_id="p-2")
    shop.event("backwards", "add_to_cart", T0 - 20 * MINUTE, product_id="p-3")
    shop.event("backwards", "product_viewed", T0 - 15 * MINUTE, product_id="p-3")
    shop.expect("viewed_then_carted", {"quick"})
    # The view that came first, loaded late, makes the slow user's chain short enough.
    shop.event("slow", "product_viewed", T0 - 25 * MINUTE, product_id="p-2")
    shop.expect("viewed_then_carted", {"quick", "slow"})
    # since => '1 day': a chain counts until its first step is a day old (slow's began with
    # the view at T0 - 25 minutes, quick's at T0 - 20 minutes).
    shop.at(T0 - 25 * MINUTE + DAY - SECOND)
    shop.expect("viewed_then_carted", {"quick", "slow"})
    shop.at(T0 - 25 * MINUTE + DAY)
    shop.expect("viewed_then_carted", {"quick"})
    shop.at(T0 - 20 * MINUTE + DAY)
    shop.expect("viewed_then_carted", set())
    assert shop.last_change("viewed_then_carted", "quick") == (
        "exit",
        T0 - 20 * MINUTE + DAY,
        "time",
    )


def test_carted_without_a_purchase_after_it(shop: Shop) -> None:
    shop.event("left", "add_to_cart", T0 - 3 * MINUTE)
    shop.event("bought", "add_to_cart", T0 - 3 * MINUTE)
    shop.event("bought", "purchase", T0 - MINUTE, amount=20)
    shop.event("bought_before", "purchase", T0 - 30 * MINUTE, amount=20)
    shop.event("bought_before", "add_to_cart", T0 - 3 * MINUTE)
    shop.expect("carted_not_bought", {"left", "bought_before"})


def test_five_sessions_in_seven_days(shop: Shop) -> None:
    # Five web visits a day apart, the first 6 days 23 hours ago.
    visits = [T0 - 6 * DAY - 23 * 60 * MINUTE + i * DAY for i in range(5)]
    for at in visits:
        shop.events("regular", "page_view", [at, at + 10 * MINUTE])
    # Five app sessions by id, all within one hour: gaps would make them one session.
    for i in range(5):
        shop.event("app_user", "app_open", T0 - 60 * MINUTE + i * MINUTE, session_id=f"s{i}")
    shop.events("occasional", "page_view", [T0 - 3 * DAY, T0 - 2 * DAY])
    shop.expect("frequent_visitors", {"regular", "app_user"})
    # The regular's first visit leaves at its last event + 7 days.
    leaves = visits[0] + 10 * MINUTE + 7 * DAY
    shop.at(leaves - SECOND)
    shop.expect("frequent_visitors", {"regular", "app_user"})
    shop.at(leaves)
    shop.expect("frequent_visitors", {"app_user"})
    assert shop.last_change("frequent_visitors", "regular") == ("exit", leaves, "time")
