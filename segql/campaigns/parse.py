"""`CREATE CAMPAIGN name [COMMENT '...'] ON ENTER|EXIT segment [AFTER '<interval>']
SEND WEBHOOK '<url>' [LIMIT n PER '<interval>'] [QUIET HOURS 'HH:MM' TO 'HH:MM']
[PAYLOAD '<template>'];`

The clauses after the segment may come in any order, each at most once. Parsing only reads the
shape; `segql.campaigns.check` decides whether the values make sense.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlglot import exp
from sqlglot.tokens import TokenType

from segql.parse import SegqlDialect

CAMPAIGN_SYNTAX = (
    "CREATE CAMPAIGN name [COMMENT '...'] ON ENTER|EXIT segment [AFTER '<interval>'] "
    "SEND WEBHOOK '<url>' [LIMIT n PER '<interval>'] [QUIET HOURS 'HH:MM' TO 'HH:MM'] "
    "[PAYLOAD '<template>'];"
)


class CreateCampaign(exp.Expression):
    """One CREATE CAMPAIGN statement; its values are literals and identifiers with positions."""

    arg_types = {
        "this": True,
        "comment": False,
        "kind": True,
        "segment": True,
        "after": False,
        "url": True,
        "limit": False,
        "per": False,
        "quiet_from": False,
        "quiet_to": False,
        "payload": False,
    }


class CampaignDialect(SegqlDialect):
    """The segment dialect, plus CREATE CAMPAIGN."""

    SYNTAX = {**SegqlDialect.SYNTAX, "CAMPAIGN": CAMPAIGN_SYNTAX}

    class Parser(SegqlDialect.Parser):
        def _parse_create(self) -> Any:
            if self._match_text_seq("CAMPAIGN"):
                return self._parse_create_campaign()
            return super()._parse_create()

        def _parse_create_campaign(self) -> CreateCampaign:
            args: dict[str, Any] = {"this": self._campaign_name()}
            if self._match(TokenType.COMMENT):
                args["comment"] = self._campaign_string("COMMENT")
            if not self._match(TokenType.ON):
                self._stop("Expected ON ENTER <segment> or ON EXIT <segment>")
            kind = self._curr.text.upper()
            if kind not in ("ENTER", "EXIT"):
                self._stop("Expected ENTER or EXIT after ON")
            self._advance()
            args["kind"] = exp.var(kind.lower())
            segment = self._parse_id_var(any_token=False)
            if segment is None:
                self._stop(f"Expected a segment name after ON {kind}")
            args["segment"] = segment
            while self._index < len(self._tokens):
                self._campaign_clause(args)
            if "url" not in args:
                self._stop("Expected SEND WEBHOOK '<url>'")
            node: CreateCampaign = self.expression(CreateCampaign(**args))
            return node

        def _campaign_clause(self, args: dict[str, Any]) -> None:
            clauses = (
                (("AFTER",), "after"),
                (("SEND", "WEBHOOK"), "url"),
                (("LIMIT",), "limit"),
                (("QUIET", "HOURS"), "quiet_from"),
                (("PAYLOAD",), "payload"),
            )
            for words, key in clauses:
                if not self._match_text_seq(*words):
                    continue
                label = " ".join(words)
                if key in args:
                    self._stop(f"{label} is given twice")
                if key == "limit":
                    self._campaign_limit(args)
                elif key == "quiet_from":
                    args["quiet_from"] = self._campaign_string(label)
                    if not self._match_text_seq("TO"):
                        self._stop("Expected TO 'HH:MM' after QUIET HOURS 'HH:MM'")
                    args["quiet_to"] = self._campaign_string("TO")
                else:
                    args[key] = self._campaign_string(label)
                return
            self._stop(
                "Expected AFTER, SEND WEBHOOK, LIMIT, QUIET HOURS or PAYLOAD, or the end of "
                "the statement"
            )

        def _stop(self, message: str) -> NoReturn:
            """Raise at once: the clause loop cannot go on past a token it does not know."""
            self.raise_error(message)
            raise self.errors[-1]

        def _campaign_limit(self, args: dict[str, Any]) -> None:
            number = self._parse_number()
            if number is None:
                self._stop("Expected a number after LIMIT, e.g. LIMIT 1 PER '24 hours'")
            args["limit"] = number
            if not self._match_text_seq("PER"):
                self._stop("Expected PER '<interval>' after LIMIT n")
            args["per"] = self._campaign_string("PER")

        def _campaign_name(self) -> exp.Expression:
            name: exp.Expression | None = self._parse_id_var(any_token=False)
            if name is None:
                self._stop("Expected a campaign name after CREATE CAMPAIGN")
            return name

        def _campaign_string(self, after: str) -> exp.Expression:
            if self._curr.token_type != TokenType.STRING:
                self._stop(f"Expected a quoted string after {after}")
            value: exp.Expression | None = self._parse_string()
            assert value is not None
            return value
