"""Bad definitions: every one is refused with a position, a problem a person can act on, and a fix.

Definitions become SQL inside the triggers of every writer, so the corpus leans on what must
never get through: other statements, arbitrary functions, subqueries, and text that tries to
break out of a literal or a name. Tricky text that is *accepted* must come out as an escaped
literal and nothing else (the end of this file); the database side of that is in
tests/integration/test_injection.py.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from segql import generate, plan
from segql.check import MAX_NAME_BYTES, check
from segql.diagnostics import DefinitionError
from segql.parse import parse_text

DEPLOYED = ("vip",)  # segments already in the database, for in_segment()


class Bad(NamedTuple):
    text: str
    problem: str  # a piece of the expected problem, lower case
    at: tuple[int, int] | None  # (line, col) of the start of the underline
    fix: str = ""  # a piece of the expected fix, lower case


def reject(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        check(parse_text(text, "bad.sql"), known_segments=DEPLOYED)
    return info.value


LONG_NAME = "n" * (MAX_NAME_BYTES + 1)
S = "CREATE SEGMENT a AS "  # conditions below start at column 21

CORPUS: dict[str, Bad] = {
    # -- syntax -----------------------------------------------------------------------------------
    "misspelled SEGMENT": Bad(
        "CREATE SEGMNT t2 AS did('x')", "unknown statement 'create segmnt'", (1, 8), "'segment'"
    ),
    "no condition": Bad("CREATE SEGMENT a AS", "expected a condition after as", (1, 18)),
    "no name": Bad("CREATE SEGMENT AS did('x')", "expected a segment name", (1, 16)),
    "no AS": Bad("CREATE SEGMENT a did('x')", "expected as before", (1, 18)),
    "dangling AND": Bad(S + "did('x') AND", "syntax error", (1, 30)),
    "unclosed paren": Bad(S + "(did('x')", "expecting )", (1, 29)),
    "unterminated string": Bad(
        S + "plan = 'premium", "cannot read the file", (1, 35), "unterminated string"
    ),
    "COMMENT without text": Bad(
        "CREATE SEGMENT a COMMENT AS did('x')", "expected a quoted string after comment", (1, 26)
    ),
    "COMMENT not a string": Bad(
        "CREATE SEGMENT a COMMENT 5 AS did('x')", "expected a quoted string after comment", (1, 26)
    ),
    "COMMENT after the condition": Bad(S + "did('x') COMMENT 'late'", "syntax error", (1, 30)),
    "missing semicolon": Bad(
        "CREATE SEGMENT a AS did('x')\nCREATE SEGMENT b AS did('y')",
        "missing ';' before this statement",
        (2, 1),
        "with ';'",
    ),
    "a dash in the name": Bad(
        "CREATE SEGMENT my-seg AS did('x')", "names cannot contain '-'", (1, 16), "my_seg"
    ),
    "= for a named argument": Bad(
        S + "did('purchase', within = '7 days')",
        "named arguments use =>",
        (1, 37),
        "within => '7 days'",
    ),
    "an interval without the word": Bad(
        S + "signed_up_at < now() - '30 days'",
        "reads as an interval",
        (1, 44),
        "now() - interval '30 days'",
    ),
    "double equals": Bad(S + "plan = = 'x'", "syntax error", (1, 28)),
    # -- functions --------------------------------------------------------------------------------
    "misspelt aggregate": Bad(
        S + "event_cnt('x') > 3",
        "unknown function 'event_cnt'",
        (1, 21),
        "did you mean 'event_count'?",
    ),
    "SQL count(*)": Bad(
        S + "count(*) > 1",
        "function 'count' is not allowed",
        (1, 21),
        "did you mean 'event_count'?",
    ),
    "pg_sleep": Bad(
        S + "pg_sleep(10) IS NULL", "unknown function 'pg_sleep'", (1, 21), "the functions are"
    ),
    "lower": Bad(
        S + "lower(city) = 'paris'", "function 'lower' is not allowed", (1, 21), "the functions are"
    ),
    "random": Bad(S + "random() > 0.5", "is not allowed", (1, 21), "the functions are"),
    "coalesce": Bad(S + "coalesce(plan, 'x') = 'x'", "function 'coalesce' is not allowed", (1, 21)),
    "schema-qualified function": Bad(S + "segql.did('x')", "is not allowed", (1, 21)),
    "window function": Bad(S + "did('x') OVER ()", "is not allowed", (1, 21)),
    "json operator": Bad(S + "plan ->> 'x' = 'y'", "is not allowed", (1, 21)),
    "string concatenation": Bad(S + "plan || 'x' = 'y'", "is not allowed", (1, 21)),
    "regular expression": Bad(S + "plan ~ 'x'", "is not allowed", (1, 21)),
    "SIMILAR TO": Bad(S + "plan SIMILAR TO 'x'", "is not allowed", (1, 21)),
    # -- arguments --------------------------------------------------------------------------------
    "no arguments": Bad(
        S + "event_count() > 3",
        "event_count takes 1 quoted argument, got 0",
        (1, 21),
        "write event_count('<event>'",
    ),
    "too many arguments": Bad(
        S + "event_count('x', 'y') > 3", "takes 1 quoted argument, got 2", (1, 21)
    ),
    "prop missing": Bad(
        S + "event_sum('purchase') > 3",
        "takes 2 quoted arguments, got 1",
        (1, 21),
        "event_sum('<event>', '<prop>'",
    ),
    "number as event": Bad(S + "event_count(3) > 3", "expects a quoted name", (1, 33)),
    "bare name as event": Bad(S + "event_count(x) > 3", "expects a quoted name", (1, 33)),
    "expression as event": Bad(S + "event_count('x' || 'y') > 1", "expects a quoted name", (1, 33)),
    "empty event": Bad(S + "did('')", "event name cannot be empty", (1, 25), "'*'"),
    "unknown named argument": Bad(
        S + "did('x', during => '1 day')", "unknown named argument 'during'", (1, 40), "within =>"
    ),
    "distinct_count without a prop": Bad(
        S + "distinct_count('purchase') >= 3",
        "distinct_count takes 2 quoted arguments, got 1",
        (1, 21),
        "distinct_count('<event>', '<prop>'",
    ),
    "active_weeks without a window": Bad(
        S + "active_weeks('app_open') >= 3", "active_weeks needs a window", (1, 21), "within =>"
    ),
    "after not quoted": Bad(
        S + "did('x', after => purchase)",
        "after expects a quoted event name",
        (1, 39),
        "'purchase'",
    ),
    "after any event": Bad(S + "did('x', after => '*')", "not '*'", (1, 39), "after => 'purchase'"),
    "after twice": Bad(
        S + "did('x', after => 'a', after => 'b')", "after is given twice", (1, 53), "once"
    ),
    "misspelled after": Bad(
        S + "did('x', afer => 'a')", "unknown named argument 'afer'", (1, 38), "'after'"
    ),
    "unknown option": Bad(
        S + "event_sum('x', 'q', before => 'a') > 1",
        "unknown named argument 'before'",
        (1, 51),
        "after => '<event>'",
    ),
    "unquoted in_segment": Bad(
        S + "in_segment(vip)", "in_segment takes one quoted", (1, 21), "in_segment('vip')"
    ),
    # -- intervals --------------------------------------------------------------------------------
    "not an interval": Bad(
        S + "did('x', within => 'forever')", "'forever' is not an interval", (1, 40), "48 hours"
    ),
    "ISO 8601 interval": Bad(S + "did('x', within => 'P1D')", "is not an interval", (1, 40)),
    "empty interval": Bad(S + "did('x', within => '')", "is not an interval", (1, 40)),
    "number as window": Bad(
        S + "did('x', within => 48)",
        "within expects a quoted interval",
        (1, 40),
        "within => '48 hours'",
    ),
    "negative window": Bad(S + "did('x', within => '-2 days')", "positive", (1, 40)),
    "zero window": Bad(S + "did('x', within => '0 seconds')", "positive", (1, 40)),
    "window summing to negative": Bad(
        S + "did('x', within => '1 day -2 days')", "positive", (1, 40)
    ),
    "calendar window": Bad(
        S + "did('x', within => '1 month')", "no fixed length", (1, 40), "30 days"
    ),
    "calendar interval literal": Bad(
        S + "signed_up_at < now() - interval '1 year'", "no fixed length", None, "365 days"
    ),
    "unknown interval unit": Bad(
        S + "signed_up_at < now() - interval '2 fortnights'", "is not an interval", None
    ),
    # -- segments ---------------------------------------------------------------------------------
    "unknown segment": Bad(
        S + "in_segment('nope')", "unknown segment 'nope'", (1, 21), "deploy it first"
    ),
    "misspelt segment": Bad(
        S + "in_segment('vpi')", "unknown segment 'vpi'", (1, 21), "did you mean 'vip'?"
    ),
    "self cycle": Bad(S + "in_segment('a')", "cycle: a -> a", (1, 21), "remove one in_segment"),
    "two-segment cycle": Bad(
        "CREATE SEGMENT a AS in_segment('b');\nCREATE SEGMENT b AS in_segment('a');",
        "cycle: a -> b -> a",
        (2, 21),
    ),
    "three-segment cycle": Bad(
        "CREATE SEGMENT a AS did('x') AND in_segment('b');\n"
        "CREATE SEGMENT b AS in_segment('c');\n"
        "CREATE SEGMENT c AS did('y') OR in_segment('a');",
        "cycle: a -> b -> c -> a",
        (3, 33),
    ),
    # -- names ------------------------------------------------------------------------------------
    "duplicate": Bad(
        "CREATE SEGMENT a AS did('x');\nCREATE SEGMENT a AS did('y');",
        "defined twice (first at bad.sql:1)",
        (2, 16),
        "unique name",
    ),
    "quoted name": Bad(
        "CREATE SEGMENT \"Big\" AS did('x')", "cannot be quoted", (1, 16), "unquoted"
    ),
    "name starting with a digit": Bad(
        "CREATE SEGMENT 1abc AS did('x')", "expected a segment name", (1, 16)
    ),
    "non-ASCII name": Bad(
        "CREATE SEGMENT ümlaut AS did('x')",
        "not a valid segment name",
        (1, 16),
        "lower-case letters",
    ),
    "qualified name": Bad("CREATE SEGMENT a.b AS did('x')", "syntax error", (1, 17)),
    "keyword as name": Bad("CREATE SEGMENT select AS did('x')", "expected a segment name", (1, 16)),
    "name too long": Bad(
        f"CREATE SEGMENT {LONG_NAME} AS did('x')",
        f"is {MAX_NAME_BYTES + 1} bytes long",
        (1, 16),
        f"at most {MAX_NAME_BYTES} bytes",
    ),
    # -- other statements, subqueries -------------------------------------------------------------
    "DROP TABLE": Bad("DROP TABLE segql.events", "only create segment statements", (1, 1)),
    "CREATE TABLE": Bad("CREATE TABLE x (a int)", "only create segment statements", (1, 1)),
    "INSERT": Bad("INSERT INTO segql.events VALUES (1)", "only create segment", (1, 1)),
    "SELECT": Bad("SELECT 1", "only create segment statements", (1, 1)),
    "DROP after a segment": Bad(
        S + "plan = 'x'; DROP TABLE segql.events", "only create segment statements", (1, 33)
    ),
    "function after a segment": Bad(
        S + "did('x');\nCREATE OR REPLACE FUNCTION segql.now() RETURNS timestamptz "
        "AS $$ SELECT now() $$ LANGUAGE sql",
        "only create segment statements",
        (2, 1),
    ),
    "IN subquery": Bad(
        S + "plan IN (SELECT plan FROM segql.profiles)", "subqueries", (1, 21), "list the values"
    ),
    "scalar subquery": Bad(
        S + "(SELECT count(*) FROM segql.events) > 3", "subqueries", None, "event aggregates"
    ),
    "UNION": Bad(S + "plan = 'x' UNION SELECT 1", "syntax error", (1, 32)),
    # -- breaking out of literals and names -------------------------------------------------------
    "quote smuggled into a literal": Bad(
        S + "plan = 'x'';' DROP TABLE segql.events", "syntax error", (1, 35)
    ),
    "backslash does not escape a quote": Bad(
        S + "plan = 'a\\' OR 1=1; DROP TABLE segql.events; --'", "only create segment", (1, 41)
    ),
    "quote in a segment name": Bad(
        "CREATE SEGMENT a\";drop table x;-- AS plan = 'y'",
        "cannot read the file",
        (1, 47),
        "quoted name",
    ),
    "statement in a quoted name": Bad(
        "CREATE SEGMENT \"a; drop table x\" AS did('x')", "cannot be quoted", (1, 16)
    ),
    "E string": Bad(S + "plan = E'a\\'b'", "is not allowed", (1, 28)),
    "dollar-quoted string": Bad(S + "$$x$$ = plan", "is not allowed", (1, 21)),
    "unicode escape string": Bad(S + "plan = U&'\\0041'", "is not allowed", (1, 28)),
    "bit string": Bad(S + "plan = B'0101'", "is not allowed", (1, 28)),
    "COLLATE": Bad(S + "plan = 'x' COLLATE \"C\"", "is not allowed", (1, 28)),
    "placeholder": Bad(S + "plan = ?", "is not allowed", None),
    "named parameter": Bad(S + "plan = :param", "is not allowed", None),
    # -- now() ------------------------------------------------------------------------------------
    "now() alone": Bad(
        S + "now() IS NULL", "now() can only be used in a comparison", (1, 21), "now() + interval"
    ),
    "now() multiplied": Bad(
        S + "signed_up_at < now() * 2",
        "cannot apply * to a timestamp",
        (1, 36),
        "intervals take * or /",
    ),
    "now() plus now()": Bad(S + "signed_up_at < now() + now()", "cannot apply +", (1, 36)),
    "now() scaled in a comparison": Bad(
        S + "(now() - signed_up_at) * 2 > interval '1 day'",
        "now() can only be moved by adding or subtracting",
        (1, 22),
        "now() - interval '30 days'",
    ),
    "now() in a nested comparison": Bad(
        S + "did('x') = (now() > signed_up_at)", "now() can only be moved", (1, 21)
    ),
    "now() in FILTER": Bad(
        S + "did('x') FILTER (WHERE now() > ts)",
        "now() cannot be used inside filter",
        (1, 44),
        "within =>",
    ),
    # -- types ------------------------------------------------------------------------------------
    "count compared with text": Bad(
        S + "event_count('x') = 'many'",
        "expected a number, found the string 'many'",
        (1, 40),
        "without quotes",
    ),
    "max compared with quoted number": Bad(
        S + "event_max('x', 'amount') > '100'", "expected a number", (1, 48)
    ),
    "timestamp compared with number": Bad(
        S + "last_event_at('x') > 5",
        "cannot compare a timestamp with a number",
        (1, 21),
        "::timestamptz",
    ),
    "timestamp compared with count": Bad(
        S + "first_event_at('x') > event_count('x')",
        "cannot compare a timestamp with a number",
        (1, 21),
    ),
    "boolean compared with number": Bad(
        S + "did('x') = 1", "cannot compare a boolean with a number", (1, 21)
    ),
    "mixed IN list": Bad(S + "\n  event_count('x') IN (1, 'two')", "expected a number", (2, 27)),
    "BETWEEN text bound": Bad(
        S + "\n  event_count('x') BETWEEN 1 AND 'z'", "expected a number", (2, 34)
    ),
    "number where a condition goes": Bad(
        S + "event_count('x')", "the condition is a number", (1, 21), "event_count('x') >= 3"
    ),
    "NOT of a number": Bad(S + "NOT event_count('x')", "expected a condition", (1, 25)),
    "AND with a number": Bad(
        S + "plan = 'x'\n   OR city = 'y' AND 1", "expected a condition", (2, 22)
    ),
    "trait arithmetic with text": Bad(S + "plan + 1 = 'x'", "expected a number", (1, 32)),
    "unknown cast": Bad(S + "plan::money = 3", "cannot cast to money", (1, 21), "numeric"),
    "array cast": Bad(S + "plan::int[] = 'x'", "cannot cast to", (1, 21)),
    "qualified trait": Bad(S + "p.plan = 'x'", "qualified name 'p.plan'", (1, 21), "bare names"),
    "IS followed by a value": Bad(
        S + "plan = 'x' IS 5", "is must be followed by null", (1, 21), "use ="
    ),
    "CASE": Bad(S + "CASE WHEN plan = 'x' THEN true ELSE false END", "is not allowed", None),
    # -- LIKE -------------------------------------------------------------------------------------
    "LIKE a column": Bad(
        S + "city LIKE city", "pattern must be a quoted string", (1, 31), "'%/pricing%'"
    ),
    "LIKE ESCAPE": Bad(S + "plan LIKE 'x' ESCAPE '!'", "is not allowed", (1, 21)),
}


@pytest.mark.parametrize("case", CORPUS.values(), ids=CORPUS.keys())
def test_rejected_with_position_problem_and_fix(case: Bad) -> None:
    err = reject(case.text)
    assert case.problem in err.problem.lower()
    assert err.fix, "every refusal says how to fix it"
    assert case.fix in err.fix.lower()
    if case.at is not None:
        assert (err.line, err.col) == case.at
    # path:line:col: problem, then the offending line with the span underlined, then the fix.
    lines = str(err).split("\n")
    assert lines[0] == f"bad.sql:{err.line}:{err.col}: {err.problem}"
    source_line = case.text.split("\n")[err.line - 1]
    assert lines[1].endswith(f"{err.line} | {source_line}")
    carets = lines[2].split("| ", 1)[1]
    assert carets.startswith(" " * (err.col - 1) + "^")
    assert lines[-1] == f"  fix: {err.fix}"


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 45


def test_full_message_of_an_unknown_function() -> None:
    call = "event_cnt('page_view', within => '7 days')"
    err = reject(f"CREATE SEGMENT hot_leads\n  COMMENT 'Busy this week'\nAS {call} >= 3;")
    assert str(err) == (
        "bad.sql:3:4: unknown function 'event_cnt'\n"
        f"   3 | AS {call} >= 3;\n"
        f"     |    {'^' * len(call)}\n"
        "  fix: did you mean 'event_count'?"
    )


def test_errors_name_the_file_they_come_from() -> None:
    first = parse_text("CREATE SEGMENT a AS did('x');", "one.sql")
    second = parse_text("\n\nCREATE SEGMENT a AS did('y');", "two.sql")
    with pytest.raises(DefinitionError) as info:
        check([*first, *second])
    assert str(info.value).startswith("two.sql:3:16: segment 'a' is defined twice")
    assert "(first at one.sql:1)" in info.value.problem


def test_a_name_at_the_limit_is_accepted() -> None:
    name = "n" * MAX_NAME_BYTES
    [segment] = check(parse_text(f"CREATE SEGMENT {name} AS did('x')"))
    assert segment.name == name
    assert len(generate.function_name(name, 999999)) <= 63


# -- known compiler bugs: each test states what should happen -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        S + "plan::regclass = 'x'",
        S + "plan = 'x'::regclass",
        S + "CAST(plan AS regproc) = 'x'",
        S + "plan::oid = 1",
    ],
)
def test_casts_to_unsupported_types_are_refused(text: str) -> None:
    err = reject(text)
    assert err.problem.startswith("cannot cast to")
    # The cast itself is underlined, wherever it sits in the condition.
    assert err.line == 1 and err.col >= 21


@pytest.mark.parametrize(
    ("text", "at"),
    [
        (S + "did('x');\nCREATE SEGMENT b AS current_user = 'x'", (2, 21)),
        (S + "signed_up_at < now() - interval '1 year'", (1, 44)),
        (S + "signed_up_at < now() - interval '2 fortnights'", (1, 44)),
        (S + "plan = ?", (1, 28)),
        (S + "plan = :param", (1, 28)),
        (S + "@plan = 'x'", (1, 21)),
        (S + "CASE WHEN plan = 'x' THEN true ELSE false END", (1, 21)),
        (S + "(SELECT count(*) FROM segql.events) > 3", (1, 21)),
        ("CREATE SEGMENT a COMMENT 'a\x00b' AS plan = 'x'", (1, 26)),
        # The second of two like nodes, and a subquery that is not where the condition starts.
        (
            S + "signed_up_at < now() - interval '1 day' AND plan < now() - interval '1 year'",
            (1, 80),
        ),
        (S + "plan = 'x' OR plan = ?", (1, 42)),
        (S + "did('x') AND (SELECT 1) = 1", (1, 34)),
        (S + "did('x') AND EXISTS (SELECT 1)", (1, 34)),
    ],
)
def test_position_of_nodes_without_source_positions(text: str, at: tuple[int, int]) -> None:
    """sqlglot keeps no position for these nodes; the error still points where they start."""
    err = reject(text)
    assert (err.line, err.col) == at


def test_exists_is_reported_as_a_subquery() -> None:
    err = reject(S + "EXISTS (SELECT 1)")
    assert "subqueries" in err.problem
    assert (err.line, err.col) == (1, 21)


@pytest.mark.parametrize(
    "text",
    [
        S + "did('x', within => '1 day', within => '2 days')",
        S + "event_count('x') LIKE '%3'",
        S + "did('x') > true",
        S + "-plan = 'x'",
        S + "in_segment('vip') FILTER (WHERE a = 1)",
        S + "did('*') FILTER (WHERE in_segment('vip'))",
        S + "plan = 'a\x00b'",
    ],
)
def test_every_refusal_has_a_fix(text: str) -> None:
    assert reject(text).fix


@pytest.mark.parametrize(
    "text",
    [
        S + "did('x', within => '1000000000 days')",
        S + "signed_up_at < now() - interval '100000000000 days'",
        S + "event_count('x') > 1e1000000",
        S + "event_count('x') > 1e-1000000",
    ],
)
def test_values_out_of_the_database_range_are_refused(text: str) -> None:
    reject(text)


# -- accepted, but only ever as escaped literals ---------------------------------------------------

TRICKY = {
    "quote": "it's",
    "quote and statement": "x'; DROP TABLE segql.events; --",
    "backslash": "a\\b",
    "trailing backslash": "a\\",
    "backslash quote": "\\'; DROP TABLE x; --",
    "dollar quotes": "$$; DROP TABLE x; $$",
    "segql dollar quotes": "$segql$; DROP TABLE x; $segql$",
    "dollar digits": "\\044$1",
    "newline": "line\nbreak",
    "comment markers": "/* -- */",
    "unicode": "na\u00efve \u2603 \U0001d518 \u2013 \u00fc",
    "long": "x" * 5000,
}


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _outside_literals(sql: str) -> str:
    """The SQL with every E'...' literal removed (escapes and doubled quotes included)."""
    return re.sub(r"E'(?:[^'\\]|\\.|'')*'", "E''", sql)


@pytest.mark.parametrize("value", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_text_stays_inside_literals(value: str) -> None:
    text = (
        f"CREATE SEGMENT a COMMENT {_sql_string(value)}\n"
        f"AS plan = {_sql_string(value)}\n"
        f"AND event_sum({_sql_string(value)}, {_sql_string(value)}) > 1\n"
        f"AND did('x') FILTER (WHERE url LIKE {_sql_string(value)});"
    )
    [segment] = check(parse_text(text))
    assert segment.comment == value
    the_plan = plan.plan([segment], {"a": 1})
    sql = generate.full_query(the_plan.segments[0]) + generate.view_sql(the_plan.segments[0])
    rest = _outside_literals(sql)
    # With the literals gone, nothing of the value is left, and no quote is left open.
    assert "DROP" not in rest
    assert "$" not in rest
    assert rest.count("'") % 2 == 0
    assert ";" not in rest.replace(";\n", "\n")


def test_trait_names_are_json_keys_never_identifiers() -> None:
    [segment] = check(parse_text('CREATE SEGMENT a AS "weird key""; drop" = \'y\''))
    the_plan = plan.plan([segment], {"a": 1})
    sql = generate.full_query(the_plan.segments[0])
    assert "(p.traits ->> E'weird key\"; drop')" in sql


def test_no_library_message_reaches_the_screen(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """sqlglot logs a warning before falling back to a generic command; the user sees only
    segql's error."""
    with caplog.at_level("DEBUG"):
        reject("CREATE SEGMNT t2 AS did('x');")
    assert [r for r in caplog.records if r.name.startswith("sqlglot")] == []
    assert capsys.readouterr() == ("", "")
