"""`CREATE MODEL name [COMMENT '...'] PREDICT <condition> WITHIN '<interval>';`

The condition is an ordinary segment condition, read over the events of the horizon that follows
a moment; `segql.models.check` decides what it may contain.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.tokens import TokenType

from segql.campaigns.parse import CampaignDialect

MODEL_SYNTAX = "CREATE MODEL name [COMMENT '...'] PREDICT <condition> WITHIN '<interval>';"


class CreateModel(exp.Expression):
    """One CREATE MODEL statement: the name, the target condition and the horizon."""

    arg_types = {"this": True, "comment": False, "expression": True, "within": True}


class ModelDialect(CampaignDialect):
    """The campaign dialect, plus CREATE MODEL."""

    SYNTAX = {**CampaignDialect.SYNTAX, "MODEL": MODEL_SYNTAX}

    class Parser(CampaignDialect.Parser):
        def _parse_create(self) -> Any:
            if self._match_text_seq("MODEL"):
                return self._parse_create_model()
            return super()._parse_create()

        def _parse_create_model(self) -> CreateModel:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self._stop("Expected a model name after CREATE MODEL")
            comment = None
            if self._match(TokenType.COMMENT):
                comment = self._parse_string()
                if comment is None:
                    self._stop("Expected a quoted string after COMMENT")
            if not self._match_text_seq("PREDICT"):
                self._stop("Expected PREDICT before the model's condition")
            within_at = self._within_index()
            if within_at is None:
                self._stop("Expected WITHIN '<interval>' after the condition")
            # The condition is parsed on its own tokens: WITHIN is not an operator Postgres
            # knows, and must not be read as part of the expression.
            tokens: list[Any] = self._tokens  # type: ignore[has-type]
            size: int = self._tokens_size  # type: ignore[has-type]
            start: int = self._index  # type: ignore[has-type]
            end = within_at
            self._tokens, self._tokens_size = tokens[:end], end
            self._index = start - 1
            self._advance()
            try:
                condition = self._parse_assignment()
                if condition is None or self._index < end:
                    self._stop("Expected a condition after PREDICT")
            finally:
                self._tokens, self._tokens_size = tokens, size
            self._index = end - 1
            self._advance()
            self._advance()  # WITHIN
            within = self._parse_string()
            if within is None:
                self._stop("Expected a quoted interval after WITHIN, e.g. '90 days'")
            node: CreateModel = self.expression(
                CreateModel(this=name, comment=comment, expression=condition, within=within)
            )
            return node

        def _within_index(self) -> int | None:
            """Where the last WITHIN outside parentheses is, from the current token on."""
            depth, found = 0, None
            for i in range(self._index, len(self._tokens)):
                token = self._tokens[i]
                if token.token_type == TokenType.L_PAREN:
                    depth += 1
                elif token.token_type == TokenType.R_PAREN:
                    depth -= 1
                elif depth == 0 and token.text.upper() == "WITHIN":
                    found = i
            return found
