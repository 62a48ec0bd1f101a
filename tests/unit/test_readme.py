"""The README's examples are real: its definitions compile and its error message is exact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segql.check import check
from segql.diagnostics import DefinitionError
from segql.models.check import check as check_models
from segql.models.check import is_model
from segql.models.parse import ModelDialect
from segql.parse import parse_text

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_definition_in_the_readme_compiles() -> None:
    found = re.findall(r"```sql\n(.*?)```", README, re.S)
    blocks = [b for b in found if "CREATE SEGMENT" in b or "CREATE TIERS" in b]
    assert blocks
    for block in blocks:
        statements = parse_text(block, "README.md", ModelDialect)
        models = {m.name: None for m in check_models([s for s in statements if is_model(s)])}
        assert check([s for s in statements if not is_model(s)], models=models)


def test_the_error_shown_in_the_readme_is_what_segql_prints() -> None:
    shown = re.search(r"```text\n(Error: shop\.sql.*?)```", README, re.S)
    assert shown is not None
    text = "CREATE SEGMENT ok AS did('x');\nCREATE SEGMENT bad AS event_cnt('x') > 3;\n"
    with pytest.raises(DefinitionError) as err:
        check(parse_text(text, "shop.sql"))
    assert f"Error: {err.value.message}\n" == shown.group(1)
