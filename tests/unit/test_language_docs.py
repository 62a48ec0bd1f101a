"""docs/language.md stays true: its examples compile, and its counter-examples do not.

- A ```sql block holding CREATE SEGMENT or CREATE TIERS must parse and check. Blocks may read
  segments defined in other blocks, as the files of one deploy may.
- A ```sql-error block must be refused with a DefinitionError. When a ```text block follows it,
  that block is the exact message (reported for a file named segments.sql).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segql.check import check as check_segments
from segql.diagnostics import DefinitionError
from segql.ir import Segment
from segql.models.check import check as check_models
from segql.models.check import is_model
from segql.models.parse import ModelDialect
from segql.parse import Statement
from segql.parse import parse_text as parse_segments

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NAME = re.compile(r"CREATE\s+SEGMENT\s+(\w+)", re.IGNORECASE)
TIERS = re.compile(r"CREATE\s+TIERS\s+\w+", re.IGNORECASE)
TIER = re.compile(r"^\s*(\w+)\s+WHEN\b", re.IGNORECASE | re.MULTILINE)


def blocks() -> list[tuple[str, str, int]]:
    """(language, body, line) of every fenced block."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
    ]


def definitions() -> list[tuple[str, int]]:
    return [
        (body, line)
        for lang, body, line in blocks()
        if lang == "sql" and (NAME.search(body) or TIERS.search(body))
    ]


def counter_examples() -> list[tuple[str, str | None, int]]:
    """(body, the message shown after it or None, line) of every sql-error block."""
    found = blocks()
    out = []
    for i, (lang, body, line) in enumerate(found):
        if lang != "sql-error":
            continue
        following = found[i + 1] if i + 1 < len(found) else None
        shown = following[1] if following is not None and following[0] == "text" else None
        out.append((body, shown, line))
    return out


DEFINED = {
    name.lower()
    for body, _ in definitions()
    for name in [*NAME.findall(body), *(TIER.findall(body) if TIERS.search(body) else [])]
}
MODELS = {
    name.lower()
    for _, body, _ in blocks()
    for name in re.findall(r"CREATE\s+MODEL\s+(\w+)", body, re.IGNORECASE)
}


def parse_text(body: str, where: str = "<string>") -> list[Statement]:
    return parse_segments(body, where, ModelDialect)


def check(statements: list[Statement], known_segments: set[str] | None = None) -> list[Segment]:
    """Models are checked on their own; segments may read the doc's models (untrained)."""
    check_models([s for s in statements if is_model(s)])
    rest = [s for s in statements if not is_model(s)]
    return check_segments(rest, known_segments or set(), {m: None for m in MODELS})


def test_the_doc_has_examples_of_both_kinds() -> None:
    assert len(DEFINED) >= 20
    assert len(counter_examples()) >= 8
    assert any(shown is not None for _, shown, _ in counter_examples())


@pytest.mark.parametrize(
    ("body", "line"), definitions(), ids=lambda v: f"line {v}" if isinstance(v, int) else ""
)
def test_sql_examples_compile(body: str, line: int) -> None:
    segments = check(parse_text(body, f"language.md:{line}"), known_segments=DEFINED)
    assert segments


@pytest.mark.parametrize(
    ("body", "shown", "line"),
    counter_examples(),
    ids=lambda v: f"line {v}" if isinstance(v, int) else "",
)
def test_counter_examples_are_refused(body: str, shown: str | None, line: int) -> None:
    with pytest.raises(DefinitionError) as info:
        check(parse_text(body, "segments.sql"), known_segments=DEFINED)
    if shown is not None:
        assert str(info.value) == shown.rstrip("\n")


def test_every_aggregate_and_operator_is_shown() -> None:
    """The reference covers the whole vocabulary the checker accepts."""
    text = "\n".join(body for body, _ in definitions())
    for word in (
        "event_count(",
        "did(",
        "event_sum(",
        "event_avg(",
        "event_min(",
        "event_max(",
        "first_event_at(",
        "last_event_at(",
        "in_segment(",
        "active_days(",
        "active_weeks(",
        "distinct_count(",
        "sequence(",
        "session_count(",
        "avg_session_minutes(",
        "rfm_recency(",
        "rfm_frequency(",
        "rfm_monetary(",
        "score(",
        "distance_km(",
        "in_zone(",
        "CREATE TIERS",
        "CREATE ZONE",
        "CREATE MODEL",
        "since =>",
        "after =>",
        "within =>",
        "FILTER (WHERE",
        "now()",
        "interval '",
        " IN (",
        " BETWEEN ",
        " LIKE ",
        " ILIKE ",
        " IS NULL",
        " IS NOT TRUE",
        " IS FALSE",
        "CAST(",
        "::boolean",
        "::numeric",
        "::timestamptz",
        " % ",
        " / ",
        "'*'",
        "rfm_recency(",
        "rfm_frequency(",
        "rfm_monetary(",
        "CREATE TIERS",
    ):
        assert word in text, f"no example uses {word!r}"


# -- the documented rule "types come from the other side" -------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        "signed_up_at + interval '7 days' > now()",
        "trial_ends_at - interval '3 days' <= now()",
        "signed_up_at + interval '7 days' > '2026-01-01'::timestamptz",
    ],
)
def test_trait_shifted_by_an_interval_compares_with_a_timestamp(condition: str) -> None:
    [segment] = check(parse_text(f"CREATE SEGMENT a AS {condition}"))
    assert segment.condition.type == "bool"
