"""The brief's examples, deployed as shipped in examples/*.sql, against hand-made users.

Each test pins the clock, writes users who should and should not qualify, and asserts the exact
membership, both incremental (segql.members) and from scratch (the full query, the oracle). Then
it moves the clock and ticks, to see time alone move users in and out at the exact instant: one
second (or one microsecond, for strict comparisons) before the due time nothing has happened yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import psycopg
import pytest

from segql import deploy, synth
from segql.check import check

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EXAMPLE_FILES = ("shop.sql", "intent.sql", "lifecycle.sql")


class Shop:
    """A database with the examples deployed and the clock pinned at T0."""

    def __init__(self, conn: psycopg.Connection, *example_files: str) -> None:
        self.conn = conn
        self.set_clock(T0)
        paths = [files("segql.examples").joinpath(name) for name in example_files]
        deploy.deploy(conn, deploy.load_files(str(p) for p in paths))
        conn.commit()

    def set_clock(self, moment: datetime) -> None:
        self.conn.execute("UPDATE segql.clock SET pinned_at = %s", [moment])
        self.conn.commit()

    def at(self, moment: datetime) -> None:
        """Move the clock and let the timer worker catch up, as `segql tick` would."""
        self.set_clock(moment)
        self.conn.execute("SELECT segql.tick()")
        self.conn.commit()

    def event(self, user: str, name: str, ts: datetime, **props: Any) -> None:
        self.conn.execute(
            "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, %s, %s, %s)",
            [user, name, ts, json.dumps(props)],
        )
        self.conn.commit()

    def events(self, user: str, name: str, stamps: list[datetime], **props: Any) -> None:
        """Several events in one statement, as a batch load would write them."""
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, %s, %s, %s)",
                [[user, name, ts, json.dumps(props)] for ts in stamps],
            )
        self.conn.commit()

    def profile(self, user: str, **traits: Any) -> None:
        self.conn.execute(
            "INSERT INTO segql.profiles (user_id, traits) VALUES (%s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits",
            [user, json.dumps(traits, default=str)],
        )
        self.conn.commit()

    def members(self, segment: str) -> set[str]:
        return {user for user, _ in deploy.members(self.conn, segment)}

    def expect(self, segment: str, expected: set[str]) -> None:
        assert self.members(segment) == expected
        assert deploy.full_members(self.conn, segment) == expected

    def since(self, segment: str, user: str) -> datetime:
        row = self.conn.execute(
            "SELECT since FROM segql.members WHERE segment = %s AND user_id = %s", [segment, user]
        ).fetchone()
        assert row is not None, f"{user} is not in {segment}"
        return row[0]  # type: ignore[no-any-return]

    def last_change(self, segment: str, user: str) -> tuple[str, datetime, str]:
        row = self.conn.execute(
            "SELECT kind, at, cause FROM segql.changes WHERE segment = %s AND user_id = %s "
            "ORDER BY seq DESC LIMIT 1",
            [segment, user],
        ).fetchone()
        assert row is not None, f"{user} never moved in {segment}"
        return row[0], row[1], row[2]


@pytest.fixture
def shop(conn: psycopg.Connection) -> Shop:
    return Shop(conn, *EXAMPLE_FILES)


def test_every_example_is_commented_and_compiles_alone() -> None:
    """Each file deploys on its own, and every segment says what it is for."""
    for name in EXAMPLE_FILES:
        path = files("segql.examples").joinpath(name)
        segments = check(deploy.load_files([str(path)]))
        assert segments, name
        for segment in segments:
            assert segment.comment, f"{name}: {segment.name} has no COMMENT"


# -- storefront ----------------------------------------------------------------------------------


def test_viewed_product_three_times_in_48_hours_without_purchase(shop: Shop) -> None:
    views = [T0 - 47 * HOUR, T0 - 2 * HOUR, T0 - HOUR]
    shop.events("browser", "product_viewed", views, product_id="p-1")
    shop.events("buyer", "product_viewed", views, product_id="p-1")
    shop.event("buyer", "purchase", T0 - 3 * HOUR, amount=20)
    shop.events("stale", "product_viewed", [T0 - 50 * HOUR, T0 - 49 * HOUR, T0 - 48 * HOUR])
    shop.events("twice", "product_viewed", [T0 - 2 * HOUR, T0 - HOUR])
    # Bought 47.5 hours ago: the purchase leaves the window half an hour from now.
    shop.events("bought_earlier", "product_viewed", [T0 - 3 * HOUR, T0 - 2 * HOUR, T0 - HOUR])
    shop.event("bought_earlier", "purchase", T0 - 47 * HOUR - 30 * 60 * SECOND, amount=5)
    shop.expect("browsed_not_bought", {"browser"})

    # The window is now - 48h < ts <= now: at exactly T0 + 1h the first view has left it.
    shop.at(T0 + 30 * 60 * SECOND - SECOND)
    shop.expect("browsed_not_bought", {"browser"})
    shop.at(T0 + 30 * 60 * SECOND)
    shop.expect("browsed_not_bought", {"browser", "bought_earlier"})
    assert shop.since("browsed_not_bought", "bought_earlier") == T0 + 30 * 60 * SECOND
    shop.at(T0 + HOUR - SECOND)
    shop.expect("browsed_not_bought", {"browser", "bought_earlier"})
    shop.at(T0 + HOUR)
    shop.expect("browsed_not_bought", {"bought_earlier"})
    assert shop.last_change("browsed_not_bought", "browser") == ("exit", T0 + HOUR, "time")

    # A purchase takes the user out in the same transaction.
    shop.event("bought_earlier", "purchase", T0 + HOUR, amount=12)
    shop.expect("browsed_not_bought", set())


def test_an_event_stamped_in_the_future_counts_from_its_timestamp(shop: Shop) -> None:
    shop.events("early", "product_viewed", [T0 - HOUR, T0 - 30 * 60 * SECOND, T0 + 2 * HOUR])
    shop.expect("browsed_not_bought", set())
    shop.at(T0 + 2 * HOUR - SECOND)
    shop.expect("browsed_not_bought", set())
    shop.at(T0 + 2 * HOUR)
    shop.expect("browsed_not_bought", {"early"})


def test_premium_users_in_new_york(shop: Shop) -> None:
    shop.profile("ny_premium", plan="premium", city="New York")
    shop.profile("ny_free", plan="free", city="New York")
    shop.profile("la_premium", plan="premium", city="Los Angeles")
    shop.profile("no_city", plan="premium")
    shop.profile("lowercase", plan="Premium", city="new york")  # text comparison is exact
    shop.event("events_only", "app_open", T0)
    shop.expect("premium_new_york", {"ny_premium"})

    shop.profile("ny_free", plan="premium", city="New York")  # an upgrade enters at once
    shop.profile("ny_premium", plan="premium", city="Boston")  # a move leaves at once
    shop.expect("premium_new_york", {"ny_free"})
    shop.conn.execute("DELETE FROM segql.profiles WHERE user_id = 'ny_free'")
    shop.conn.commit()
    shop.expect("premium_new_york", set())


def test_average_order_value_above_100(shop: Shop) -> None:
    shop.events("big", "purchase", [T0 - 10 * DAY], amount=150)
    shop.event("big", "purchase", T0 - DAY, amount=60)  # (150 + 60) / 2 = 105
    shop.event("exactly", "purchase", T0 - DAY, amount=100)
    shop.event("small", "purchase", T0 - DAY, amount=99.99)
    shop.event("no_amount", "purchase", T0 - DAY, category="books")
    shop.event("bad_amount", "purchase", T0 - DAY, amount="a lot")
    shop.event("bad_amount", "purchase", T0 - DAY, amount="250")  # numeric text is a number
    shop.event("viewer", "product_viewed", T0 - DAY, amount=1000)
    shop.expect("high_order_value", {"big", "bad_amount"})

    # Orders without an amount do not drag the average down: it is over the amounts present.
    shop.event("big", "purchase", T0, category="books")
    shop.expect("high_order_value", {"big", "bad_amount"})
    shop.event("big", "purchase", T0, amount=10)  # (150 + 60 + 10) / 3 < 100
    shop.expect("high_order_value", {"bad_amount"})


def test_added_items_to_cart_in_the_last_hour(shop: Shop) -> None:
    shop.event("carted", "add_to_cart", T0 - 10 * 60 * SECOND, product_id="p-1")
    shop.event("carted_long_ago", "add_to_cart", T0 - HOUR, product_id="p-1")  # just left
    shop.event("viewer", "product_viewed", T0, product_id="p-1")
    shop.expect("carted_last_hour", {"carted"})
    assert shop.since("carted_last_hour", "carted") == T0

    shop.at(T0 + 50 * 60 * SECOND - SECOND)
    shop.expect("carted_last_hour", {"carted"})
    shop.at(T0 + 50 * 60 * SECOND)
    shop.expect("carted_last_hour", set())
    assert shop.last_change("carted_last_hour", "carted") == ("exit", T0 + 50 * 60 * SECOND, "time")

    # A later add pushes the exit back to an hour after it.
    shop.event("carted", "add_to_cart", T0 + HOUR, product_id="p-2")
    shop.event("carted", "add_to_cart", T0 + HOUR + 20 * 60 * SECOND, product_id="p-3")
    shop.at(T0 + 2 * HOUR)
    shop.expect("carted_last_hour", {"carted"})
    shop.at(T0 + 2 * HOUR + 20 * 60 * SECOND)
    shop.expect("carted_last_hour", set())


def test_abandoned_cart_enters_after_an_idle_hour(shop: Shop) -> None:
    shop.event("abandoner", "add_to_cart", T0, product_id="p-1")
    shop.event("buyer", "add_to_cart", T0, product_id="p-1")
    shop.event("buyer", "purchase", T0 + 10 * 60 * SECOND, amount=30)
    shop.event("bought_before", "purchase", T0 - DAY, amount=30)
    shop.event("bought_before", "add_to_cart", T0, product_id="p-2")
    shop.expect("abandoned_cart", set())

    shop.at(T0 + HOUR - SECOND)
    shop.expect("abandoned_cart", set())
    shop.at(T0 + HOUR)
    shop.expect("abandoned_cart", {"abandoner", "bought_before"})
    shop.at(T0 + DAY - SECOND)
    shop.expect("abandoned_cart", {"abandoner", "bought_before"})
    shop.at(T0 + DAY)
    shop.expect("abandoned_cart", set())


def test_bought_from_three_categories(shop: Shop) -> None:
    for i, category in enumerate(("books", "toys", "books", None)):
        shop.event("two", "purchase", T0 - i * DAY, amount=10, **({"category": category}))
    for i, category in enumerate(("books", "toys", "home")):
        shop.event("three", "purchase", T0 - 400 * DAY - i * HOUR, amount=10, category=category)
    shop.event("viewer", "product_viewed", T0, category="home")
    shop.expect("broad_shoppers", {"three"})
    shop.event("two", "purchase", T0, amount=10, category="Books")  # another value: case counts
    shop.expect("broad_shoppers", {"two", "three"})


def test_cart_over_100_since_the_last_purchase(shop: Shop) -> None:
    shop.event("cart", "add_to_cart", T0 - HOUR, price=40.0, quantity=2, line_total=80.0)
    shop.event(
        "cart", "add_to_cart", T0 - 30 * 60 * SECOND, price=25.0, quantity=1, line_total=25.0
    )
    shop.event("paid", "add_to_cart", T0 - HOUR, price=120.0, quantity=1, line_total=120.0)
    shop.event("paid", "purchase", T0 - 10 * 60 * SECOND, amount=120.0)
    shop.event("paid", "add_to_cart", T0, price=60.0, quantity=1, line_total=60.0)
    shop.expect("big_cart", {"cart"})
    # Checking out later than the clock: the cart empties at that second, not before.
    shop.event("cart", "purchase", T0 + HOUR, amount=105.0)
    shop.at(T0 + HOUR - SECOND)
    shop.expect("big_cart", {"cart"})
    shop.at(T0 + HOUR)
    shop.expect("big_cart", set())
    assert shop.last_change("big_cart", "cart") == ("exit", T0 + HOUR, "time")


# -- intent --------------------------------------------------------------------------------------


def test_viewed_the_pricing_page_three_times(shop: Shop) -> None:
    pricing = [T0 - 40 * DAY, T0 - DAY, T0]
    shop.events("regular", "page_view", pricing, url="/pricing", channel="web")
    shop.events("deep_link", "page_view", pricing, url="https://shop.example/pricing?plan=pro")
    shop.events("twice", "page_view", pricing[:2], url="/pricing")
    shop.events("twice", "page_view", [T0], url="/deals")
    shop.events("clicked", "email_clicked", pricing, url="/pricing")  # not a page_view
    shop.events("no_url", "page_view", pricing)
    shop.expect("pricing_page_regulars", {"regular", "deep_link"})

    # No window: old views keep counting forever.
    shop.at(T0 + 400 * DAY)
    shop.expect("pricing_page_regulars", {"regular", "deep_link"})


def test_loan_calculator_rates_and_competitors_within_30_days(shop: Shop) -> None:
    def loan_shopper(
        user: str, calc: list[datetime], rates: datetime | None, competitor: datetime | None
    ) -> None:
        shop.events(user, "loan_calculator_viewed", calc, amount=20000, term_months=60)
        if rates is not None:
            shop.event(user, "rates_compared", rates, providers=3)
        if competitor is not None:
            shop.event(user, "competitor_site_visited", competitor, site="lendfast.example")

    loan_shopper("intent", [T0 - 20 * DAY, T0 - 10 * DAY, T0 - DAY], T0 - 5 * DAY, T0 - 2 * DAY)
    loan_shopper("no_rates", [T0 - 3 * DAY] * 3, None, T0 - DAY)
    loan_shopper("no_competitor", [T0 - 3 * DAY] * 3, T0 - DAY, None)
    loan_shopper("two_views", [T0 - 3 * DAY] * 2, T0 - DAY, T0 - DAY)
    loan_shopper("old_rates", [T0 - 3 * DAY] * 3, T0 - 31 * DAY, T0 - DAY)
    shop.expect("loan_high_intent", {"intent"})

    # The first calculator view leaves the 30-day window at T0 + 10 days.
    shop.at(T0 + 10 * DAY - SECOND)
    shop.expect("loan_high_intent", {"intent"})
    shop.at(T0 + 10 * DAY)
    shop.expect("loan_high_intent", set())
    shop.event("intent", "loan_calculator_viewed", T0 + 10 * DAY, amount=25000)
    shop.expect("loan_high_intent", {"intent"})


def test_active_on_web_and_in_the_app_in_the_last_7_days(shop: Shop) -> None:
    shop.event("both", "page_view", T0 - 6 * DAY, url="/", channel="web")
    shop.event("both", "app_open", T0 - DAY, channel="app")
    shop.events("web_only", "page_view", [T0 - DAY, T0], url="/", channel="web")
    shop.event("app_only", "app_open", T0, channel="app")
    shop.event("email_and_app", "email_opened", T0, channel="email", campaign="welcome")
    shop.event("email_and_app", "app_open", T0, channel="app")
    shop.event("stale_web", "page_view", T0 - 8 * DAY, url="/", channel="web")
    shop.event("stale_web", "app_open", T0, channel="app")
    shop.expect("web_and_app", {"both"})

    # The web visit leaves the 7-day window exactly 7 days after it happened.
    shop.at(T0 + DAY - SECOND)
    shop.expect("web_and_app", {"both"})
    shop.at(T0 + DAY)
    shop.expect("web_and_app", set())
    shop.event("app_only", "product_viewed", T0 + DAY, channel="web", product_id="p-9")
    shop.expect("web_and_app", {"app_only"})


# -- lifecycle -----------------------------------------------------------------------------------


def test_trial_ending_in_3_days(shop: Shop) -> None:
    shop.profile("ends_in_2_days", plan="pro", trial_ends_at=(T0 + 2 * DAY).isoformat())
    shop.profile("ends_in_5_days", plan="pro", trial_ends_at=(T0 + 5 * DAY).isoformat())
    shop.profile("ended", plan="pro", trial_ends_at=(T0 - HOUR).isoformat())
    shop.profile("no_trial", plan="free")
    shop.profile("garbage", plan="pro", trial_ends_at="next tuesday")  # reads as NULL
    shop.profile("epoch", plan="pro", trial_ends_at=(T0 + DAY).timestamp())  # epoch seconds
    shop.expect("trial_ending_soon", {"ends_in_2_days", "epoch"})

    # Enters when trial_ends_at <= now() + 3 days holds: for a trial ending at T0 + 5 days, at
    # T0 + 2 days exactly, the instant the trial ending at T0 + 2 days leaves.
    shop.at(T0 + 2 * DAY - SECOND)
    shop.expect("trial_ending_soon", {"ends_in_2_days"})
    shop.at(T0 + 2 * DAY)
    shop.expect("trial_ending_soon", {"ends_in_5_days"})
    assert shop.since("trial_ending_soon", "ends_in_5_days") == T0 + 2 * DAY
    assert shop.last_change("trial_ending_soon", "epoch") == ("exit", T0 + DAY, "time")
    # Leaves when trial_ends_at > now() stops holding: at the end of the trial exactly.
    shop.at(T0 + 5 * DAY - MICROSECOND)
    shop.expect("trial_ending_soon", {"ends_in_5_days"})
    shop.at(T0 + 5 * DAY)
    shop.expect("trial_ending_soon", set())

    # An extended trial re-enters on the profile update, without waiting for a tick.
    shop.profile("ends_in_5_days", plan="pro", trial_ends_at=(T0 + 6 * DAY).isoformat())
    shop.expect("trial_ending_soon", {"ends_in_5_days"})


def test_lapsed_users_after_14_days_without_any_event(shop: Shop) -> None:
    shop.event("quiet", "app_open", T0 - 10 * DAY, channel="app")
    shop.event("busy", "app_open", T0 - 10 * DAY, channel="app")
    shop.event("long_gone", "email_opened", T0 - 30 * DAY, channel="email")
    shop.profile("never_seen", plan="free")  # no events: last_event_at is NULL, so not lapsed
    shop.expect("lapsed", {"long_gone"})

    # A strict comparison: at exactly 14 days the user is not lapsed yet, one microsecond later
    # they are.
    due = T0 + 4 * DAY
    shop.event("busy", "page_view", T0 - DAY, url="/", channel="web")
    shop.at(due)
    shop.expect("lapsed", {"long_gone"})
    shop.at(due + MICROSECOND)
    shop.expect("lapsed", {"long_gone", "quiet"})
    assert shop.since("lapsed", "quiet") == due + MICROSECOND

    # Any event at all brings them back.
    shop.at(due + HOUR)
    shop.event("quiet", "email_opened", due + HOUR, channel="email")
    shop.event("long_gone", "app_open", due + HOUR, channel="app")
    shop.expect("lapsed", set())


def test_not_purchased_in_60_days_but_purchased_before(shop: Shop) -> None:
    last_purchase = T0 - 50 * DAY
    shop.event("regular", "purchase", T0 - 70 * DAY, amount=40)
    shop.event("regular", "purchase", last_purchase, amount=40)
    shop.event("recent", "purchase", T0 - DAY, amount=40)
    shop.event("gone", "purchase", T0 - 61 * DAY, amount=700)
    shop.event("never_bought", "product_viewed", T0 - 100 * DAY)
    shop.profile("no_events", plan="free")
    shop.expect("lapsing_buyers", {"gone"})
    shop.expect("lapsing_big_spenders", {"gone"})

    due = last_purchase + 60 * DAY  # T0 + 10 days
    shop.at(due - SECOND)
    shop.expect("lapsing_buyers", {"gone"})
    shop.at(due)
    shop.expect("lapsing_buyers", {"gone", "regular"})
    assert shop.since("lapsing_buyers", "regular") == due
    assert shop.last_change("lapsing_buyers", "regular") == ("enter", due, "time")
    shop.expect("lapsing_big_spenders", {"gone"})

    # A purchase moves them straight back out.
    shop.at(due + HOUR)
    shop.event("regular", "purchase", due + HOUR, amount=25)
    shop.expect("lapsing_buyers", {"gone"})


def test_rfm_tiers_move_with_time(shop: Shop) -> None:
    # Five orders worth $600 over the last 40 days, the latest 5 days ago.
    orders = [T0 - 40 * DAY, T0 - 30 * DAY, T0 - 20 * DAY, T0 - 10 * DAY, T0 - 5 * DAY]
    shop.events("champ", "purchase", orders, amount=120)
    # Three small orders in 90 days: loyal, not a champion.
    shop.events("loyal", "purchase", [T0 - 80 * DAY, T0 - 50 * DAY, T0 - 20 * DAY], amount=30)
    # Many orders, but none in the last 30 days; they turn 60 days old at T0 + 1 day + 1 hour.
    shop.events("lapsing", "purchase", [T0 - 59 * DAY + HOUR] * 6, amount=200)
    shop.event("sleeper", "purchase", T0 - 179 * DAY, amount=20)
    tiers = (
        "top_customers",
        "repeat_buyers",
        "lapsing_buyers",
        "dormant_buyers",
        "lapsing_big_spenders",
    )

    def expect_tiers(**members: set[str]) -> None:
        for tier in tiers:
            shop.expect(tier, members.get(tier, set()))

    expect_tiers(
        top_customers={"champ"}, repeat_buyers={"loyal", "lapsing"}, lapsing_buyers={"sleeper"}
    )

    # The sleeper moves from lapsing_buyers to dormant_buyers exactly 180 days after their purchase.
    shop.at(T0 + DAY - SECOND)
    expect_tiers(
        top_customers={"champ"}, repeat_buyers={"loyal", "lapsing"}, lapsing_buyers={"sleeper"}
    )
    shop.at(T0 + DAY)
    expect_tiers(
        top_customers={"champ"}, repeat_buyers={"loyal", "lapsing"}, dormant_buyers={"sleeper"}
    )
    assert shop.last_change("lapsing_buyers", "sleeper") == ("exit", T0 + DAY, "time")

    # Lapsing's orders turn 60 days old one hour after T0 + 1 day: out of repeat_buyers, into
    # lapsing_buyers and, having spent $1200, into lapsing_big_spenders.
    shop.at(T0 + DAY + HOUR)
    expect_tiers(
        top_customers={"champ"},
        repeat_buyers={"loyal"},
        dormant_buyers={"sleeper"},
        lapsing_buyers={"lapsing"},
        lapsing_big_spenders={"lapsing"},
    )

    # The champion's latest order leaves the 30-day window at T0 + 25 days, and they step down
    # to repeat_buyers in the same instant: 3 of their orders are still within 90 days.
    shop.at(T0 + 25 * DAY - SECOND)
    assert "champ" in shop.members("top_customers")
    shop.at(T0 + 25 * DAY)
    assert "champ" not in shop.members("top_customers")
    assert "champ" in shop.members("repeat_buyers")
    assert shop.since("repeat_buyers", "champ") == T0 + 25 * DAY
    for tier in tiers:
        assert shop.members(tier) == deploy.full_members(shop.conn, tier)


# -- every example at once, against the synthetic shop --------------------------------------------


@pytest.mark.slow
def test_examples_match_the_full_query_on_the_synthetic_shop(conn: psycopg.Connection) -> None:
    """Backfill, triggers and timers agree with the oracle on realistic data, and the examples
    are not vacuous on it."""
    synth.copy_profiles(conn, synth.generate_profiles(300, seed=7, end=T0))
    history = synth.event_rows(6000, 300, seed=7, start=T0 - 90 * DAY, end=T0 - 2 * DAY)
    synth.copy_event_rows(conn, history)
    shop = Shop(conn, *EXAMPLE_FILES)
    names = [s.name for s in deploy.list_segments(conn)]
    assert len(names) == 19

    def agree() -> dict[str, int]:
        sizes = {}
        for name in names:
            incremental = shop.members(name)
            assert incremental == deploy.full_members(conn, name), name
            sizes[name] = len(incremental)
        return sizes

    sizes = agree()
    for name in (
        "premium_new_york",
        "high_order_value",
        "pricing_page_regulars",
        "lapsing_buyers",
        "lapsed",
        "top_customers",
        "repeat_buyers",
        "loan_high_intent",
        "trial_ending_soon",
        "broad_shoppers",
        "big_cart",
    ):
        assert sizes[name] > 0, name

    # Two more days of live traffic, then the clock runs on with ticks along the way.
    live = synth.event_rows(2000, 300, seed=8, start=T0 - 2 * DAY, end=T0)
    synth.copy_event_rows(conn, live, batch_size=250)
    agree()
    for step in (HOUR, DAY, 10 * DAY, 60 * DAY):
        shop.at(T0 + step)
        agree()
