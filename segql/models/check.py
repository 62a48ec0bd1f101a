"""CREATE MODEL trees to checked `ModelDef`s, or a `DefinitionError` at the offending text.

The target is an ordinary condition, read by the segment checker: it is evaluated over the
events of the horizon after a moment, at the horizon's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from segql import ir
from segql.check import MAX_NAME_BYTES, NAME_RE, Checker
from segql.diagnostics import Span
from segql.models.parse import CreateModel
from segql.parse import Statement, span_of

MIN_HORIZON = Decimal(3600)


@dataclass(frozen=True)
class ModelDef:
    """A checked model definition; equal when they mean the same thing, whatever the layout."""

    name: str
    comment: str | None
    target: ir.Expr
    horizon: Decimal  # seconds
    text: str = field(default="", compare=False)
    source: str = field(default="", compare=False)
    span: Span = field(default=Span(0, 0), compare=False)

    @property
    def fingerprint(self) -> str:
        """Equal for definitions that predict the same thing (the comment is not part of it)."""
        return repr((self.target, self.horizon))


def is_model(stmt: Statement) -> bool:
    return isinstance(stmt.tree, CreateModel)


def check(statements: Iterable[Statement]) -> list[ModelDef]:
    out: list[ModelDef] = []
    seen: dict[str, ModelDef] = {}
    for stmt in statements:
        checker = _ModelChecker()
        model = checker.model(stmt)
        if model.name in seen:
            checker.fail(
                model.span,
                f"model '{model.name}' is defined twice",
                "give each model a unique name, or delete one of the definitions",
            )
        seen[model.name] = model
        out.append(model)
    return out


class _ModelChecker(Checker):
    def model(self, stmt: Statement) -> ModelDef:
        tree = stmt.tree
        assert isinstance(tree, CreateModel)
        self.source = stmt.source
        ident = tree.this
        name_span = span_of(ident, self.source)
        name = str(ident.this).lower()
        if ident.args.get("quoted") or not NAME_RE.match(name):
            self.fail(
                name_span,
                f"'{ident.this}' is not a valid model name",
                "use lower-case letters, digits and underscores, unquoted, starting with a letter",
            )
        if len(name.encode()) > MAX_NAME_BYTES:
            self.fail(name_span, f"model name '{name}' is too long", f"use {MAX_NAME_BYTES} bytes")
        comment_node = tree.args.get("comment")
        comment = str(comment_node.this) if comment_node is not None else None
        if comment_node is not None and comment is not None and "\x00" in comment:
            self.fail(span_of(comment_node, self.source), "comments cannot contain NUL characters")
        self.condition_span = span_of(tree.expression, self.source)
        target = self.boolean(tree.expression, "segment")
        self.check_time(target)
        for node in ir.walk(target):
            if isinstance(node, (ir.InSegment, ir.Score)):
                what = "in_segment()" if isinstance(node, ir.InSegment) else "score()"
                self.fail(
                    node.span,
                    f"a model cannot predict {what}",
                    "predict what users do: e.g. PREDICT did('purchase') WITHIN '90 days'",
                )
        within = tree.args["within"]
        within_span = span_of(within, self.source)
        horizon = self.parse_interval(str(within.this), within_span)
        if horizon < MIN_HORIZON:
            self.fail(
                within_span,
                "the horizon must be at least an hour",
                "write e.g. WITHIN '30 days'",
            )
        text = stmt.text
        return ModelDef(name, comment, target, horizon, text, stmt.source.path, name_span)
