"""The dashboard hub's memory: per-minute figures, per-stream filtering, resuming by seq."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from segql.dashboard.hub import Activity, Hub, Stream, Update
from segql.dashboard.server import check_exposure, is_loopback
from segql.errors import ConfigError
from segql.feed import Change

NOW = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on a loop of its own thread: this thread may already run one (Playwright's)."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(main)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def change(seq: int, segment: str = "vip", kind: str = "enter", ago: float = 0) -> Change:
    return Change(seq, segment, f"u{seq}", kind, NOW - timedelta(minutes=ago), "event", 1)


def minute(ago: float) -> int:
    return int((NOW - timedelta(minutes=ago)).timestamp() // 60)


def test_activity_summarizes_the_last_hour_and_day() -> None:
    a = Activity(size=10)
    a.add(minute(0), "enter", 3)
    a.add(minute(2), "exit", 1)
    a.add(minute(90), "enter", 5)  # in the day, not the hour
    a.add(minute(2000), "enter", 7)  # older than a day: trimmed
    a.trim(minute(0))
    s = a.summary(NOW)
    assert (s["size"], s["hour"], s["day"]) == (10, 2, 7)
    assert (s["enters_per_min"], s["exits_per_min"]) == (0.6, 0.2)
    assert len(s["spark"]) == 60
    # Sizes at the end of each minute, oldest first, rebuilt back from the size now.
    assert s["spark"][-1] == 10 and s["spark"][-2] == 7 and s["spark"][-3] == 7
    assert s["spark"][-4] == 8 and s["spark"][0] == 8


def test_a_stream_sees_its_segment_only_and_the_overview_no_changes() -> None:
    async def go() -> None:
        update = Update(
            [change(1, "vip"), change(2, "lapsed")], {"vip": {"size": 1}, "lapsed": {}}, NOW, 2
        )
        one, overview = Stream("vip"), Stream(None, changes=False)
        one.offer(update)
        overview.offer(update)
        got = one.queue.get_nowait()
        assert isinstance(got, Update)
        assert [c.seq for c in got.changes] == [1] and list(got.segments) == ["vip"]
        assert got.position == 2
        seen = overview.queue.get_nowait()
        assert isinstance(seen, Update) and seen.changes == [] and len(seen.segments) == 2

    run_loop(go())


def test_a_reconnect_resumes_from_memory_or_asks_for_the_log() -> None:
    async def go() -> None:
        hub = Hub("postgresql://unused")
        hub._publish(Update([change(5), change(3), change(7, "other")], {}, NOW, 7))
        hub._publish(Update([change(9)], {}, NOW, 9))
        _, after_three = hub.open("vip", 3)  # delivery order, not seq order: 3 came after 5
        assert after_three is not None and [c.seq for c in after_three] == [9]
        _, after_five = hub.open(None, 5)
        assert after_five is not None and [c.seq for c in after_five] == [3, 7, 9]
        _, current = hub.open(None, 9)
        assert current == []
        _, unknown = hub.open(None, 1)  # not in memory: read from the log
        assert unknown is None
        hub.stop()

    run_loop(go())


def test_only_loopback_goes_without_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "t0ken")
    try:
        check_exposure("0.0.0.0", None)
    except ConfigError as exc:
        assert "--token or SEGQL_DASHBOARD_TOKEN" in exc.message
    else:
        raise AssertionError("a public address without a token was accepted")
