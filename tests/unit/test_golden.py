"""Golden files: definitions and the full-recompute query the compiler writes for them.

Each file in tests/fixtures/golden holds cases in the shape of sqlglot's optimizer fixtures:

    -- title: what the case shows
    CREATE SEGMENT ... ;          (one or more statements: the input)
    -- expected:
    SELECT ...                    (the full query of the last segment of the input)

A change in generated SQL shows up here as a diff a reviewer can read. To accept a deliberate
change, regenerate the files with SEGQL_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from segql import generate, plan
from segql.check import check
from segql.parse import parse_text

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
UPDATE = os.environ.get("SEGQL_UPDATE_GOLDEN") == "1"
TITLE = re.compile(r"^-- title: (.+)$", re.MULTILINE)
EXPECTED = "-- expected:"


@dataclass
class Case:
    title: str
    definition: str
    expected: str


def read_cases(path: Path) -> list[Case]:
    text = path.read_text(encoding="utf-8")
    starts = list(TITLE.finditer(text))
    cases = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[match.end() : end]
        definition, sep, expected = body.partition(f"\n{EXPECTED}\n")
        assert sep, f"{path.name}: case '{match.group(1)}' has no '{EXPECTED}' line"
        cases.append(Case(match.group(1), definition.strip(), expected.strip()))
    return cases


def write_cases(path: Path, cases: list[Case]) -> None:
    blocks = [f"-- title: {c.title}\n{c.definition}\n{EXPECTED}\n{c.expected}\n" for c in cases]
    path.write_text("\n".join(blocks), encoding="utf-8")


def compile_full_query(definition: str, source: str) -> str:
    """The full query of the last segment, planned as deploy plans a first version."""
    segments = check(parse_text(definition, source))
    the_plan = plan.plan(segments, {s.name: 1 for s in segments})
    return generate.full_query(the_plan.by_name(segments[-1].name)).strip()


FILES = sorted(GOLDEN.glob("*.sql"))
CASES = [(path, case) for path in FILES for case in read_cases(path)]


def test_golden_files_cover_enough_cases() -> None:
    assert 8 <= len(CASES) <= 16
    titles = [case.title for _, case in CASES]
    assert len(titles) == len(set(titles)), "titles name cases, so they must be unique"


@pytest.mark.parametrize(("path", "case"), CASES, ids=[f"{p.stem}: {c.title}" for p, c in CASES])
def test_full_query_matches_golden(path: Path, case: Case) -> None:
    actual = compile_full_query(case.definition, path.name)
    if UPDATE:
        cases = read_cases(path)
        for stored in cases:
            if stored.title == case.title:
                stored.expected = actual
        write_cases(path, cases)
        return
    assert actual == case.expected, (
        f"{path.name} '{case.title}' changed; if that is intended, rerun with "
        "SEGQL_UPDATE_GOLDEN=1 and review the diff"
    )


def test_files_round_trip() -> None:
    """The reader and writer agree, so regenerating leaves untouched cases byte for byte."""
    for path in FILES:
        original = path.read_text(encoding="utf-8")
        cases = read_cases(path)
        assert (
            "\n".join(
                f"-- title: {c.title}\n{c.definition}\n{EXPECTED}\n{c.expected}\n" for c in cases
            )
            == original
        )
