"""CREATE CAMPAIGN: what parses, and the error (file:line:col and a fix) for what does not."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from segql.campaigns.check import Campaign, check, is_campaign
from segql.campaigns.parse import CampaignDialect
from segql.diagnostics import DefinitionError
from segql.parse import parse_text

GOOD = """CREATE SEGMENT abandoned_cart AS did('add_to_cart') AND NOT did('purchase');
CREATE CAMPAIGN cart_rescue
  COMMENT 'Nudge carts left for 30 minutes'
  ON ENTER abandoned_cart
  AFTER '30 minutes'
  SEND WEBHOOK 'https://hooks.example.com/cart'
  LIMIT 1 PER '24 hours'
  QUIET HOURS '22:00' TO '08:00'
  PAYLOAD '{"user": {{ user_id | tojson }}, "plan": {{ traits.plan | tojson }}}';
"""


def campaigns(text: str, segments: tuple[str, ...] = ("abandoned_cart",)) -> list[Campaign]:
    statements = parse_text(text, "cart.sql", CampaignDialect)
    return check([s for s in statements if is_campaign(s)], segments)


def error(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        campaigns(text)
    return caught.value


def test_the_issue_example_reads_as_written() -> None:
    (c,) = campaigns(GOOD)
    assert (c.name, c.kind, c.segment, c.url) == (
        "cart_rescue",
        "enter",
        "abandoned_cart",
        "https://hooks.example.com/cart",
    )
    assert (c.after, c.limit, c.per) == (Decimal(1800), 1, Decimal(86400))
    assert c.quiet == (time(22), time(8))
    assert c.comment == "Nudge carts left for 30 minutes"


def test_clauses_in_any_order_and_only_what_is_needed() -> None:
    (c,) = campaigns(
        "CREATE CAMPAIGN bye ON EXIT abandoned_cart PAYLOAD '{}' SEND WEBHOOK 'http://h.example/x';"
    )
    assert (c.kind, c.after, c.limit, c.quiet, c.payload) == ("exit", None, None, None, "{}")


def test_layout_does_not_change_the_definition() -> None:
    one = campaigns(GOOD)[0]
    other = campaigns(GOOD.replace("\n  ", " ").replace("'30 minutes'", "'1800 seconds'"))[0]
    assert one == other


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        (("ON ENTER abandoned_cart", "ON ENTER abandoned_carts"), "4:12", "unknown segment"),
        (("https://hooks", "ftp://hooks"), "6:16", "is not an http(s) URL"),
        (("'30 minutes'", "'30 mintues'"), "5:9", "is not an interval"),
        (("'24 hours'", "'1 month'"), "7:15", "no fixed length"),
        (("'24 hours'", "'0 hours'"), "7:15", "must be a positive interval"),
        (("LIMIT 1", "LIMIT 0"), "7:9", "is not a whole number"),
        (("'08:00'", "'8 am'"), "8:26", "is not a time of day"),
        (("'08:00'", "'22:00'"), "8:26", "starts and ends at the same time"),
        (("{{ user_id | tojson }}", "{{ user_id }}"), "9:11", "does not give JSON"),
        (("{{ user_id | tojson }}", "{{ usr | tojson }}"), "9:11", "'usr' is not defined"),
        (("{{ user_id | tojson }}", "{{ user_id | tojson }"), "9:11", "does not give JSON"),
        (("ON ENTER", "ON ARRIVE"), "4:6", "Expected ENTER or EXIT"),
        (("SEND WEBHOOK", "POST"), "6:3", "Expected AFTER, SEND WEBHOOK"),
        (("cart_rescue", '"Cart"'), "2:17", "not a valid campaign name"),
    ],
)
def test_bad_definitions_point_at_the_value(
    change: tuple[str, str], where: str, problem: str
) -> None:
    err = error(GOOD.replace(*change))
    assert str(err).startswith(f"cart.sql:{where}: "), str(err)
    assert problem in str(err)
    assert "fix:" in str(err)


def test_a_missing_webhook_is_a_syntax_error_with_the_campaign_syntax() -> None:
    err = error("CREATE CAMPAIGN c ON ENTER abandoned_cart;")
    assert "Expected SEND WEBHOOK" in str(err)
    assert "CREATE CAMPAIGN name" in str(err)


def test_twice_and_name_clashes_are_refused() -> None:
    text = "CREATE CAMPAIGN c ON ENTER abandoned_cart SEND WEBHOOK 'https://a.example';\n"
    assert "defined twice" in str(error(text + text))
    clash = (
        "CREATE CAMPAIGN abandoned_cart ON ENTER abandoned_cart SEND WEBHOOK 'https://a.example';"
    )
    assert "already the name of a segment" in str(error(clash))


DOCS = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["README.md", "docs/campaigns.md"])
def test_campaigns_in_the_docs_check(doc: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```sql\n(.*?)```", text, re.S) if "CREATE CAMPAIGN" in b]
    assert blocks
    segments = ("abandoned_cart",)
    for block in blocks:
        statements = parse_text(block, doc, CampaignDialect)
        assert check([s for s in statements if is_campaign(s)], segments)


def test_the_error_in_the_docs_is_what_segql_prints() -> None:
    text = (DOCS / "docs/campaigns.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n(Error: shop\.sql.*?)```", text, re.S)
    assert shown is not None
    # The campaign of GOOD, with the segment misspelt, on line 2 of the file.
    source = "\n" + GOOD.split("\n", 1)[1].replace(
        "ON ENTER abandoned_cart", "ON ENTER abandonedcart"
    )
    with pytest.raises(DefinitionError) as err:
        check(parse_text(source, "shop.sql", CampaignDialect), ("abandoned_cart",))
    assert f"Error: {err.value.message}\n" == shown.group(1)
