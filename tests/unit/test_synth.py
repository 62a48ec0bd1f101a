"""The synthetic shop: reproducible, exact in size, heavy-tailed, and ordered in time."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from segql import synth

END = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
START = END - timedelta(days=30)
EVENT_NAMES = {
    "page_view",
    "product_viewed",
    "add_to_cart",
    "purchase",
    "app_open",
    "email_opened",
    "email_clicked",
    "loan_calculator_viewed",
    "rates_compared",
    "competitor_site_visited",
}


def _events(n: int = 20_000, users: int = 1_000, seed: int = 7) -> list[dict]:
    return list(synth.generate_events(n, users, seed, START, END))


def _ts(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    assert _events(3_000, seed=1) == _events(3_000, seed=1)
    assert _events(3_000, seed=1) != _events(3_000, seed=2)
    profiles = list(synth.generate_profiles(200, 5, END))
    assert profiles == list(synth.generate_profiles(200, 5, END))


def test_counts_are_exact() -> None:
    for n in (0, 1, 17, 1_000, 12_345):
        assert sum(1 for _ in synth.event_rows(n, 50, 3, START, END)) == n
    profiles = list(synth.generate_profiles(321, 3, END))
    assert len(profiles) == 321
    assert len({p["user_id"] for p in profiles}) == 321


def test_activity_is_heavy_tailed() -> None:
    per_user = Counter(e["user_id"] for e in _events(50_000, users=2_000))
    counts = sorted(per_user.values(), reverse=True)
    top_share = sum(counts[:20]) / sum(counts)  # the top 1 % of users
    assert top_share > 0.10
    assert counts[0] > 20 * counts[len(counts) // 2]


def test_each_users_events_move_forward_within_the_range() -> None:
    last: dict[str, datetime] = {}
    for event in _events():
        ts = _ts(event["ts"])
        assert START <= ts <= END
        assert ts >= last.get(event["user_id"], START)
        last[event["user_id"]] = ts


def test_the_stream_covers_the_whole_range() -> None:
    stamps = [_ts(e["ts"]) for e in _events()]
    assert min(stamps) - START < timedelta(hours=1)
    assert END - max(stamps) < timedelta(hours=1)


def test_purchases_are_positive_and_follow_a_cart_add() -> None:
    carted: defaultdict[str, int] = defaultdict(int)
    purchases = 0
    for event in _events(30_000):
        if event["name"] == "add_to_cart":
            carted[event["user_id"]] += 1
        elif event["name"] == "purchase":
            purchases += 1
            props = event["props"]
            assert props["amount"] > 0
            assert props["category"] and props["order_id"]
            assert carted[event["user_id"]] > 0
    assert purchases > 0


def test_every_event_type_appears_with_its_props() -> None:
    events = _events(50_000)
    assert {e["name"] for e in events} == EVENT_NAMES
    for event in events:
        assert set(event) == {"user_id", "name", "ts", "props"}
        props, name = event["props"], event["name"]
        if name == "page_view":
            assert props["url"].startswith("/") and props["channel"] in {"web", "app"}
        elif name == "product_viewed":
            assert props["product_id"] and props["category"] and props["price"] > 0
        elif name == "app_open":
            assert props["channel"] == "app"
        elif name.startswith("email_"):
            assert props["channel"] == "email"
    assert len({e["props"]["order_id"] for e in events if e["name"] == "purchase"}) == sum(
        e["name"] == "purchase" for e in events
    )


def test_profiles_carry_the_traits_segments_use() -> None:
    profiles = list(synth.generate_profiles(3_000, 11, END))
    plans = Counter(p["traits"]["plan"] for p in profiles)
    assert set(plans) == {"free", "pro", "premium"}
    assert plans["free"] > plans["pro"] > plans["premium"]
    assert any(p["traits"]["city"] == "New York" for p in profiles)
    trials = [p["traits"] for p in profiles if "trial_ends_at" in p["traits"]]
    assert 0.05 < len(trials) / len(profiles) < 0.25
    for traits in (p["traits"] for p in profiles):
        assert _ts(traits["signed_up_at"]) <= END
        assert traits["country"]
        assert ("lat" in traits) == ("lon" in traits)
    assert any(_ts(t["trial_ends_at"]) - END < timedelta(days=3) for t in trials)


def test_app_opens_report_locations_near_the_users_city() -> None:
    cities = {p["user_id"]: p["traits"]["city"] for p in synth.generate_profiles(1_000, 7, END)}
    centres = {c[0]: (c[2], c[3]) for c in synth.CITIES}
    opens = [e for e in _events() if e["name"] == "app_open"]
    located = [e for e in opens if "lat" in e["props"]]
    assert 0.5 < len(located) / len(opens) < 0.9
    for event in located:
        lat, lon = centres[cities[event["user_id"]]]
        assert abs(event["props"]["lat"] - lat) < 0.5 and abs(event["props"]["lon"] - lon) < 0.5
    assert all(("lat" in e["props"]) == ("lon" in e["props"]) for e in opens)


def test_jsonl_files_are_in_the_ingest_format(tmp_path: Path) -> None:
    counts = synth.write_jsonl(tmp_path, 2_000, 100, 4, START, END)
    assert counts == (2_000, 100)
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(
        synth.generate_events(2_000, 100, 4, START, END)
    )
    profile_lines = (tmp_path / "profiles.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(set(json.loads(line)) == {"user_id", "traits"} for line in profile_lines)


def test_progress_is_reported_for_every_event(tmp_path: Path) -> None:
    reported: list[int] = []
    synth.write_jsonl(tmp_path, 25_001, 100, 4, START, END, on_batch=reported.append)
    assert sum(reported) == 25_001


def test_live_events_are_stamped_by_the_given_clock() -> None:
    clock = iter(START + timedelta(seconds=i) for i in range(10_000))
    events = list(islice(synth.live_events(1, 50, lambda: next(clock)), 500))
    assert [_ts(e["ts"]) for e in events] == [START + timedelta(seconds=i) for i in range(500)]
    assert {e["name"] for e in events} <= EVENT_NAMES
    assert {e["user_id"] for e in events} <= {synth.user_id(i) for i in range(50)}
    named = list(islice(synth.live_events(1, ["ann", "bob"], lambda: END), 50))
    assert {e["user_id"] for e in named} <= {"ann", "bob"}


def test_copy_lines_escape_what_copy_text_format_reserves() -> None:
    line = synth.copy_line(("a\tb", "back\\slash", "new\nline", "{}"))
    assert line == "a\\tb\tback\\\\slash\tnew\\nline\t{}\n"
    row = synth._event_row({"user_id": "u", "name": "n", "ts": "t", "props": {"q": 'say "hi"'}})
    assert json.loads(row[3]) == {"q": 'say "hi"'}


@settings(max_examples=25, deadline=None)
@given(
    n_events=st.integers(0, 400),
    n_users=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    days=st.floats(0.01, 400),
)
def test_any_size_is_exact_ordered_and_valid_json(
    n_events: int, n_users: int, seed: int, days: float
) -> None:
    start = END - timedelta(days=days)
    out = io.StringIO()
    written = synth.write_events_jsonl(out, synth.event_rows(n_events, n_users, seed, start, END))
    assert written == n_events
    last: dict[str, datetime] = {}
    for line in out.getvalue().splitlines():
        event = json.loads(line)
        ts = _ts(event["ts"])
        assert start - timedelta(milliseconds=1) <= ts <= END
        assert ts >= last.get(event["user_id"], ts)
        last[event["user_id"]] = ts


def test_cart_adds_carry_quantities_and_line_totals_that_purchases_add_up() -> None:
    carts: defaultdict[str, float] = defaultdict(float)
    quantities: set[int] = set()
    categories: defaultdict[str, set[str]] = defaultdict(set)
    for event in _events(30_000):
        props, user = event["props"], event["user_id"]
        if event["name"] == "add_to_cart":
            quantities.add(props["quantity"])
            assert props["line_total"] == round(props["price"] * props["quantity"], 2)
            carts[user] += props["line_total"]
        elif event["name"] == "purchase":
            # A purchase follows its cart's adds in the same session, with nothing between.
            assert props["amount"] <= round(carts[user], 2) + 0.01
            assert props["quantity"] >= props["items"]
            categories[user].add(props["category"])
            carts[user] = 0.0
    assert quantities == {1, 2, 3}
    assert any(len(c) >= 3 for c in categories.values())


def test_a_lifecycle_makes_users_churn_and_buy_at_their_own_rates() -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    rows = list(synth.event_rows(20_000, 500, 4, start, end, with_lifecycle=True))
    assert len(rows) == 20_000
    assert rows == list(synth.event_rows(20_000, 500, 4, start, end, with_lifecycle=True))
    life = synth.lifecycle(500, 4, start.timestamp(), end.timestamp())
    churned = [i for i in range(500) if life.churns[i] < end.timestamp()]
    assert 100 < len(churned) < 500
    last: dict[str, str] = {}
    for user, _, ts, _ in rows:
        last[user] = ts
    late = [i for i in churned if synth.user_id(i) in last]
    # Sessions are drawn only while a user is active (rarely, after many re-picks, later).
    after = [
        i
        for i in late
        if datetime.fromisoformat(last[synth.user_id(i)]).timestamp() > life.churns[i] + 86400
    ]
    assert len(after) <= len(late) // 10
