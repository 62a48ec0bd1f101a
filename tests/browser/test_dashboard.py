"""The dashboard in a real browser: live sizes, a resumed feed, draft reach, the token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from segql import deploy, run
from segql.dashboard.server import Background
from segql.parse import parse_text

DEFINITIONS = """
CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');
CREATE SEGMENT buyers AS did('purchase');
"""
NOW = "2026-05-01T12:00:00Z"


@pytest.fixture
def shop(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        run.clock_set(conn, NOW)
        conn.execute("SELECT segql.track('ann', 'add_to_cart', '{}', segql.now())")
        deploy.deploy(conn, parse_text(DEFINITIONS, "shop.sql"))
    return database_url


@pytest.fixture
def dashboard(shop: str) -> Iterator[Background]:
    with Background(shop) as served:
        yield served


def track(url: str, user: str, event: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT segql.track(%s, %s, '{}', segql.now())", [user, event])


def size_cell(page: Any, segment: str) -> Any:
    return page.locator(f'tr[data-segment="{segment}"] [data-size]')


def test_sizes_change_on_screen_after_an_insert(
    page: Any, shop: str, dashboard: Background
) -> None:
    from playwright.sync_api import expect

    page.goto(dashboard.url)
    expect(size_cell(page, "carted")).to_have_text("1")
    expect(size_cell(page, "buyers")).to_have_text("0")
    expect(page.locator("#live.on")).to_have_count(1)  # the stream is open before the insert
    track(shop, "bob", "add_to_cart")
    track(shop, "bob", "purchase")
    expect(size_cell(page, "carted")).to_have_text("2", timeout=5000)
    expect(size_cell(page, "buyers")).to_have_text("1", timeout=5000)
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("DELETE FROM segql.events WHERE user_id = 'bob'")
    expect(size_cell(page, "carted")).to_have_text("1", timeout=5000)


def test_a_reconnect_resumes_the_feed(page: Any, shop: str) -> None:
    from playwright.sync_api import expect

    first = Background(shop).start()
    port = first.port
    try:
        page.goto(f"{first.url}segments/carted")
        expect(page.locator("#live.on")).to_have_count(1)
        track(shop, "bob", "add_to_cart")
        expect(page.locator("#changes tr", has_text="bob")).to_have_count(1, timeout=5000)
    finally:
        first.stop()
    expect(page.locator("#live.on")).to_have_count(0, timeout=5000)
    # While no server runs, two users enter and ann leaves: the browser has to get these from
    # the change log when it reconnects to a new server process.
    track(shop, "cat", "add_to_cart")
    track(shop, "dan", "add_to_cart")
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("DELETE FROM segql.events WHERE user_id = 'ann'")
    with Background(shop, port=port):
        expect(page.locator("#changes tr", has_text="cat")).to_have_count(1, timeout=10000)
        expect(page.locator("#changes tr", has_text="dan")).to_have_count(1)
        expect(page.locator("#changes tr.exit", has_text="ann")).to_have_count(1)
        expect(page.locator(".cards [data-size]")).to_have_text("3")
        track(shop, "eva", "add_to_cart")  # and it goes on live
        expect(page.locator("#changes tr", has_text="eva")).to_have_count(1, timeout=5000)
    assert page.locator("#changes tr", has_text="bob").count() == 1  # nothing twice


def test_draft_shows_reach_and_errors(page: Any, dashboard: Background) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard.url}draft")
    page.fill("#definition", "CREATE SEGMENT ann_like AS did('add_to_cart');")
    page.click("button[type=submit]")
    result = page.locator('[data-estimate="ann_like"]')
    expect(result.locator("[data-reach]")).to_have_text("1")
    expect(result).to_contain_text("carted")  # the overlap with a deployed segment
    page.fill("#definition", "CREATE SEGMENT bad AS\n  event_cnt('x') > 1;")
    page.click("button[type=submit]")
    expect(page.locator("[data-error-where]")).to_have_text(
        "line 2, column 3: unknown function 'event_cnt'"
    )
    expect(page.locator("[data-error-message]")).to_contain_text("did you mean 'event_count'?")


def test_the_token_is_enforced(page: Any, shop: str) -> None:
    from playwright.sync_api import expect

    with Background(shop, token="s3cret") as served:
        base = f"http://127.0.0.1:{served.port}/"
        denied = page.goto(base)
        assert denied is not None and denied.status == 401
        assert page.request.get(f"{base}stream").status == 401
        assert page.request.get(f"{base}stream?token=wrong").status == 401
        page.goto(served.url)  # ?token=s3cret sets a cookie that the page and stream carry on
        expect(size_cell(page, "carted")).to_have_text("1")
        track(shop, "bob", "add_to_cart")
        expect(size_cell(page, "carted")).to_have_text("2", timeout=5000)
        assert page.goto(f"{base}segments/carted").status == 200  # type: ignore[union-attr]


def test_segment_members_and_user_pages(page: Any, dashboard: Background) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard.url}segments/carted")
    expect(page.locator("#chart canvas")).to_have_count(1)  # the size chart was drawn
    expect(page.locator("#member-count")).to_have_text("1 matching")
    page.fill("#member-search input[name=q]", "zzz")
    expect(page.locator("#member-count")).to_have_text("0 matching")
    page.fill("#member-search input[name=q]", "an")
    expect(page.locator("#members a", has_text="ann")).to_have_count(1)
    href = page.locator("#csv").get_attribute("href") or ""
    csv = page.request.get(dashboard.url.rstrip("/") + href, fail_on_status_code=True)
    assert csv.text().splitlines()[0] == "user_id,since"
    assert [line.split(",")[0] for line in csv.text().splitlines()[1:]] == ["ann"]

    page.locator("#members a", has_text="ann").click()
    expect(page.locator('tr[data-segment="carted"] [data-member]')).to_contain_text("since")
    expect(page.locator('tr[data-segment="buyers"] [data-member]')).to_have_text("no")
    expect(page.locator("table.intervals")).to_contain_text("still a member")
