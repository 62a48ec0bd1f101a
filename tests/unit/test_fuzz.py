"""Fuzzing the parser and checker: conditions drawn from the grammar, and byte-level mutations of
valid files. Every input is either accepted or refused with a DefinitionError that has a
position; never another exception, never more than a second.

SEGQL_FUZZ_EXAMPLES raises the number of examples per test (CI runs the default).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segql.check import check
from segql.diagnostics import DefinitionError
from segql.parse import parse_text

EXAMPLES = int(os.environ.get("SEGQL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=1000,  # ms: no input may take longer than a second
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("SEGQL_FUZZ_RANDOM") != "1",
)
# models.sql reads a model (CREATE MODEL, score()), which the segment checker alone refuses.
EXAMPLE_FILES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.sql")
    if p.name != "models.sql"
)
SEEDS = [p.read_text(encoding="utf-8") for p in EXAMPLE_FILES]


def outcome(text: str) -> None:
    """Accepted, or refused with a position inside the text."""
    try:
        check(parse_text(text, "fuzz.sql"), known_segments=("vip",))
    except DefinitionError as err:
        assert err.line >= 1 and err.col >= 1, err
        assert err.line <= text.count("\n") + 2, err
        assert f"fuzz.sql:{err.line}:{err.col}" in str(err)


EVENTS = st.sampled_from(["'purchase'", "'view'", "'*'", "''", "'it''s'", "purchase", "1"])
WINDOWS = st.sampled_from(
    ["", ", within => '1 hour'", ", within => '-1 day'", ", within => 'soon'", ", within => 3"]
)
AGGS = st.builds(
    lambda fn, ev, prop, win: f"{fn}({ev}{prop}{win})",
    st.sampled_from(
        [
            "event_count",
            "did",
            "event_sum",
            "event_avg",
            "event_min",
            "event_max",
            "first_event_at",
            "last_event_at",
            "in_segment",
            "nope",
            "now",
        ]
    ),
    EVENTS,
    st.sampled_from(["", ", 'amount'", ", amount", ", 'a', 'b'"]),
    WINDOWS,
)
ATOMS = st.one_of(
    AGGS,
    st.sampled_from(["plan", "city", "signed_up_at", '"Quoted"', "x.y", "NULL", "true"]),
    st.sampled_from(["1", "2.5", "-3", "'pro'", "now()", "interval '3 days'", "'2026-01-01'"]),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            children,
            st.sampled_from(
                [
                    "AND",
                    "OR",
                    "=",
                    "<>",
                    ">=",
                    "<",
                    "+",
                    "-",
                    "*",
                    "/",
                    "||",
                    "LIKE",
                    "IN",
                    "BETWEEN",
                    "",
                ]
            ),
            children,
        ),
        st.builds(lambda a: f"NOT {a}", children),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a: f"{a} IS NULL", children),
        st.builds(lambda a, b: f"{a} IN ({b})", children, children),
        st.builds(lambda a, b, c: f"{a} BETWEEN {b} AND {c}", children, children, children),
    )


CONDITIONS = st.recursive(ATOMS, _combine, max_leaves=12)


@FUZZ
@given(
    name=st.sampled_from(["a", "vip_2", '"A b"', "select", "n" * 70, "é"]),
    comment=st.sampled_from(["", " COMMENT 'x'", " COMMENT 'it''s'", " COMMENT x"]),
    condition=CONDITIONS,
)
def test_conditions_from_the_grammar(name: str, comment: str, condition: str) -> None:
    outcome(f"CREATE SEGMENT {name}{comment} AS {condition};\n")


MUTATION = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "duplicate"]),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=8),
    st.text(
        alphabet=st.sampled_from([*"();,'\"=<>!-+*/\\\n\t $%{}[]:", "\x00", "é", "0", "a"]),
        min_size=1,
        max_size=8,
    ),
)


@FUZZ
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutations_of_valid_files(seed: str, mutations: list[tuple[str, int, int, str]]) -> None:
    text = seed
    for kind, where, length, new in mutations:
        at = where % (len(text) + 1)
        if kind == "delete":
            text = text[:at] + text[at + length :]
        elif kind == "insert":
            text = text[:at] + new + text[at:]
        elif kind == "replace":
            text = text[:at] + new + text[at + len(new) :]
        else:
            text = text[:at] + text[at : at + length] * 2 + text[at + length :]
    outcome(text)


def test_the_seeds_are_valid() -> None:
    assert SEEDS
    for text in SEEDS:
        check(parse_text(text, "seed.sql"), known_segments=("vip",))
