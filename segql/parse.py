"""Text to syntax trees: `CREATE SEGMENT name [COMMENT '...'] AS <condition>;`.

The grammar is Postgres's expression grammar (through a subclass of sqlglot's Postgres dialect)
plus one statement. Parsing accepts anything Postgres could parse; `check` decides what is allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import TokenType

from segql.diagnostics import DefinitionError, SourceFile, Span, Token


class CreateSegment(exp.Expression):
    """`CREATE SEGMENT this [COMMENT comment] AS expression`."""

    arg_types = {"this": True, "comment": False, "expression": True}


class Tier(exp.Expression):
    """`this WHEN expression`, one tier of CREATE TIERS."""

    arg_types = {"this": True, "expression": True}


class CreateTiers(exp.Expression):
    """`CREATE TIERS this [COMMENT comment] AS tier, tier, ...`."""

    arg_types = {"this": True, "comment": False, "expressions": True}


TIERS_SYNTAX = "CREATE TIERS name [COMMENT '...'] AS tier1 WHEN <condition>, tier2 WHEN ...;"


class CreateZone(exp.Expression):
    """`CREATE ZONE this AS POLYGON ((lon lat, ...))` or `... AS CIRCLE (lat, lon, radius_km)`.

    `kind` is polygon or circle; `points` holds the numbers as written, grouped: (lon, lat)
    pairs for a polygon, one (lat, lon, radius) triple for a circle. `check` decides whether
    they make a zone.
    """

    arg_types = {"this": True, "kind": True, "points": True}


ZONE_SYNTAX = (
    "CREATE ZONE name AS POLYGON ((lon lat, lon lat, lon lat, ...)); or "
    "CREATE ZONE name AS CIRCLE (lat, lon, radius_km);"
)


class SegqlDialect(Postgres):
    """Postgres, plus the CREATE SEGMENT, CREATE TIERS and CREATE ZONE statements."""

    # How each statement reads, by the word after CREATE, for the fix line of a syntax error.
    SYNTAX: dict[str, str] = {
        "SEGMENT": "CREATE SEGMENT name [COMMENT '...'] AS <condition>;",
        "TIERS": TIERS_SYNTAX,
        "ZONE": ZONE_SYNTAX,
    }

    class Parser(Postgres.Parser):  # type: ignore[valid-type,misc]
        def _parse_create(self) -> Any:
            if self._match_text_seq("SEGMENT"):
                return self._parse_create_segment()
            if self._match_text_seq("TIERS"):
                return self._parse_create_tiers()
            if self._match_text_seq("ZONE"):
                return self._parse_create_zone()
            return super()._parse_create()

        def _parse_create_tiers(self) -> CreateTiers:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self.raise_error("Expected a name for the tiers after CREATE TIERS")
            comment = None
            if self._match(TokenType.COMMENT):
                comment = self._parse_string()
                if comment is None:
                    self.raise_error("Expected a quoted string after COMMENT")
            if not self._match(TokenType.ALIAS):
                self.raise_error("Expected AS before the tiers")
            tiers = [self._parse_tier()]
            while self._match(TokenType.COMMA):
                tiers.append(self._parse_tier())
            node: CreateTiers = self.expression(
                CreateTiers(this=name, comment=comment, expressions=tiers)
            )
            return node

        def _parse_tier(self) -> Tier:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self.raise_error("Expected a tier: <name> WHEN <condition>")
            if not self._match(TokenType.WHEN):
                self.raise_error("Expected WHEN after the tier's name")
            condition = self._parse_assignment()
            if condition is None:
                self.raise_error("Expected the tier's condition after WHEN")
            node: Tier = self.expression(Tier(this=name, expression=condition))
            return node

        def _parse_create_zone(self) -> CreateZone:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self._zone_stop("Expected a zone name after CREATE ZONE")
            if not self._match(TokenType.ALIAS):
                self._zone_stop("Expected AS POLYGON ((...)) or AS CIRCLE (...) after the name")
            groups: list[exp.Tuple] = []
            if self._match_text_seq("POLYGON"):
                kind = "polygon"
                self._zone_paren("POLYGON")
                self._zone_paren("POLYGON (")
                while True:
                    groups.append(exp.Tuple(expressions=[self._zone_number(), self._zone_number()]))
                    if not self._match(TokenType.COMMA):
                        break
                self._zone_close()
                self._zone_close()
            elif self._match_text_seq("CIRCLE"):
                kind = "circle"
                self._zone_paren("CIRCLE")
                numbers = [self._zone_number()]
                while self._match(TokenType.COMMA):
                    numbers.append(self._zone_number())
                self._zone_close()
                groups.append(exp.Tuple(expressions=numbers))
            else:
                self._zone_stop("Expected POLYGON or CIRCLE after AS")
            node: CreateZone = self.expression(
                CreateZone(this=name, kind=exp.var(kind), points=groups)
            )
            return node

        def _zone_stop(self, message: str) -> NoReturn:
            """Raise at once: nothing after a malformed coordinate list can be read."""
            self.raise_error(message)
            raise self.errors[-1]

        def _zone_paren(self, after: str) -> None:
            if not self._match(TokenType.L_PAREN):
                self._zone_stop(f"Expected '(' after {after}")

        def _zone_close(self) -> None:
            if not self._match(TokenType.R_PAREN):
                self._zone_stop("Expected ')' or ',' here")

        def _zone_number(self) -> exp.Expression:
            number = self._parse_unary()
            if number is None:
                self._zone_stop("Expected a number")
            return number  # type: ignore[no-any-return]

        def _parse_create_segment(self) -> CreateSegment:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self._zone_stop("Expected a segment name after CREATE SEGMENT")
            comment = None
            if self._match(TokenType.COMMENT):
                comment = self._parse_string()
                if comment is None:
                    self._zone_stop("Expected a quoted string after COMMENT")
            if not self._match(TokenType.ALIAS):
                self._zone_stop("Expected AS before the segment's condition")
            condition = self._parse_assignment()
            if condition is None:
                self._zone_stop("Expected a condition after AS")
            node: CreateSegment = self.expression(
                CreateSegment(this=name, comment=comment, expression=condition)
            )
            return node

        def _parse_lambda(self, alias: bool = False) -> Any:
            # A function argument may carry its own FILTER (WHERE ...): each step of
            # sequence('a' FILTER (WHERE price > 50), 'b') filters its own events.
            this = super()._parse_lambda(alias=alias)
            if this is not None and self._match_pair(TokenType.FILTER, TokenType.L_PAREN):
                self._match(TokenType.WHERE)
                where = self._parse_where(skip_where_token=True)
                this = self.expression(exp.Filter(this=this, expression=where))
                self._match_r_paren()
            return this


@dataclass(frozen=True)
class Statement:
    """One parsed statement of a definition file, with where it came from."""

    tree: exp.Expr
    source: SourceFile
    span: Span

    @property
    def text(self) -> str:
        return self.source.text[self.span.start : self.span.end + 1]


# sqlglot keeps positions on leaves only. A node that begins with a keyword of its own starts
# at the nearest such token before its first leaf (the token after which must be `then`, if
# given); a node with no leaves at all is found by its token within the enclosing condition.
_INTRODUCED_BY: dict[type[exp.Expr], tuple[str, str | None]] = {
    exp.Interval: ("INTERVAL", None),
    exp.Case: ("CASE", None),
    exp.Exists: ("EXISTS", None),
    exp.Subquery: ("L_PAREN", "SELECT"),
    exp.Parameter: ("PARAMETER", None),
}
_LEAFLESS: dict[type[exp.Expr], tuple[str, ...]] = {
    exp.Interval: ("INTERVAL",),  # `interval '1 year'` is rebuilt as 1 and YEAR, without positions
    exp.CurrentUser: ("CURRENT_USER",),
    exp.Placeholder: ("PLACEHOLDER", "COLON"),
}


def span_of(node: exp.Expression, source: SourceFile, within: Span | None = None) -> Span:
    """The characters a subtree covers, from the positions sqlglot keeps on its leaves and the
    tokens of keywords it does not keep. `within` bounds the search for those tokens (the
    condition being checked) and is the answer when nothing better is known."""
    starts: list[int] = []
    ends: list[int] = []
    for sub in node.walk():
        meta = sub.meta
        if "start" in meta:
            starts.append(int(meta["start"]))
            ends.append(int(meta["end"]))
    if source.tokens:
        starts += _keyword_starts(node, source, min(starts, default=None), within)
    if not starts:
        found = _leafless_span(node, source, within)
        if found is not None:
            return found
        if within is not None:
            return within
        return Span(0, max(0, len(source.text.rstrip()) - 1))
    start, end = min(starts), max(ends, default=min(starts))
    # A string literal's recorded span excludes its quotes; widen to cover them.
    if start > 0 and source.text[start - 1] == "'":
        start -= 1
    if end + 1 < len(source.text) and source.text[end + 1] in "')":
        end += 1
    return Span(start, end)


def _keyword_starts(
    node: exp.Expression, source: SourceFile, leaf_start: int | None, within: Span | None
) -> list[int]:
    """Where the keyword-introduced nodes of the subtree begin (see _INTRODUCED_BY)."""
    out: list[int] = []
    floor = within.start if within is not None else 0
    tokens = source.tokens
    for sub in node.walk():
        rule = _INTRODUCED_BY.get(type(sub))
        if rule is None:
            continue
        first = min((int(x.meta["start"]) for x in sub.walk() if "start" in x.meta), default=None)
        if first is None:
            first = leaf_start
        if first is None:
            continue
        kind, then = rule
        for i in range(len(tokens) - 1, -1, -1):
            token = tokens[i]
            if token.start >= first or token.kind != kind:
                continue
            if token.start < floor:
                break
            if then is None or (i + 1 < len(tokens) and tokens[i + 1].kind == then):
                out.append(token.start)
                break
    return out


def _leafless_span(node: exp.Expression, source: SourceFile, within: Span | None) -> Span | None:
    """A node without any positioned leaf, found by its own token: the k-th such token in
    `within` for the k-th node of its kind in the statement (the tree, walked depth first,
    keeps the order of the text)."""
    for sub in node.walk():
        kinds = _LEAFLESS.get(type(sub))
        if kinds is None:
            continue
        root = sub
        while root.parent is not None:
            root = root.parent
        same = [n for n in root.walk(bfs=False) if _LEAFLESS.get(type(n)) == kinds]
        nth = next((k for k, n in enumerate(same) if n is sub), 0)
        tokens = source.tokens
        for i, token in enumerate(tokens):
            if within is not None and not within.start <= token.start <= within.end:
                continue
            if token.kind not in kinds:
                continue
            if nth > 0:
                nth -= 1
                continue
            # `:name` is two tokens; underline both.
            colon = token.kind == "COLON" and i + 1 < len(tokens)
            return Span(token.start, tokens[i + 1].end if colon else token.end)
    return None


def parse_text(
    text: str, path: str = "<string>", dialect_class: type[SegqlDialect] = SegqlDialect
) -> list[Statement]:
    """Parse every statement of a definition file (`dialect_class` adds statements)."""
    source = SourceFile(path, text)
    dialect = dialect_class()
    try:
        tokens = dialect.tokenize(text)
    except TokenError as err:
        raise DefinitionError(
            source,
            _span_at_end(source),
            f"cannot read the file: {err}",
            "check for an unterminated string ('...') or quoted name (\"...\")",
        ) from None
    source = SourceFile(path, text, tuple(Token(t.token_type.name, t.start, t.end) for t in tokens))
    statements: list[Statement] = []
    for chunk in _split(tokens):
        start, end = chunk[0].start, chunk[-1].end
        try:
            with _library_quiet():
                trees = dialect.parser(error_level=ErrorLevel.RAISE).parse(chunk, text)
        except ParseError as err:
            raise _known_mistake(source, chunk) or _parse_error(
                source, err, Span(start, end), _syntax(dialect, chunk)
            ) from None
        except (AttributeError, TypeError, ValueError, IndexError, KeyError, RecursionError):
            # sqlglot fails this way on some malformed input (found by fuzzing, e.g. a leading
            # "{:"); it is still a statement that does not parse, at this statement's place.
            raise DefinitionError(
                source,
                Span(start, end),
                "this statement does not parse",
                "write `CREATE SEGMENT <name> [COMMENT '<text>'] AS <condition>;`",
            ) from None
        for tree in trees:
            if tree is not None:
                statements.append(Statement(tree, source, Span(start, end)))
    return statements


def _drop(record: logging.LogRecord) -> bool:
    return False


@contextmanager
def _library_quiet() -> Iterator[None]:
    """sqlglot logs a warning when it falls back to a generic command; the checker says what is
    wrong with such a statement, so the library's words never reach the user's screen."""
    logger = logging.getLogger("sqlglot")
    logger.addFilter(_drop)
    try:
        yield
    finally:
        logger.removeFilter(_drop)


def parse_file(
    path: str | Path, dialect_class: type[SegqlDialect] = SegqlDialect
) -> list[Statement]:
    """Parse a definition file from disk."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        from segql.errors import SegqlError

        raise SegqlError(f"cannot read {p}: {err}") from None
    return parse_text(text, str(path), dialect_class)


def _split(tokens: list[Any]) -> list[list[Any]]:
    """Statements separated by semicolons; a semicolon inside a string is part of the string."""
    chunks: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [c for c in chunks if c]


def _known_mistake(source: SourceFile, chunk: list[Any]) -> DefinitionError | None:
    """Syntax errors with a cause worth naming: a missing `;`, a name with a dash."""
    for token in chunk[1:]:
        if token.token_type == TokenType.CREATE:
            return DefinitionError(
                source,
                Span(token.start, token.end),
                "missing ';' before this statement",
                "end each CREATE SEGMENT statement with ';'",
            )
    if (
        len(chunk) > 4
        and chunk[0].token_type == TokenType.CREATE
        and chunk[2].token_type == TokenType.VAR
        and chunk[3].token_type == TokenType.DASH
        and chunk[4].token_type == TokenType.VAR
    ):
        dashed = source.text[chunk[2].start : chunk[4].end + 1]
        return DefinitionError(
            source,
            Span(chunk[2].start, chunk[4].end),
            f"'{dashed}' is not a valid segment name: names cannot contain '-'",
            f"use underscores: {dashed.replace('-', '_').lower()}",
        )
    return None


def _span_at_end(source: SourceFile) -> Span:
    end = max(0, len(source.text.rstrip()) - 1)
    return Span(end, end)


def _syntax(dialect: SegqlDialect, chunk: list[Any]) -> str:
    """How the statement in `chunk` should read, by its second word."""
    word = chunk[1].text.upper() if len(chunk) > 1 else ""
    syntax = dialect.SYNTAX
    return syntax.get(word) or " or ".join(syntax.values())


def _parse_error(
    source: SourceFile, err: ParseError, fallback: Span, syntax: str
) -> DefinitionError:
    detail = err.errors[0] if err.errors else {}
    description = str(detail.get("description") or err).split("\n")[0]
    line, col = detail.get("line"), detail.get("col")
    span = fallback
    if isinstance(line, int) and isinstance(col, int):
        lines = source.text.split("\n")
        if 1 <= line <= len(lines):
            offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(0, col - 1)
            highlight = str(detail.get("highlight") or "")
            start = max(0, offset - max(0, len(highlight) - 1))
            span = Span(start, offset)
    return DefinitionError(
        source,
        span,
        f"syntax error: {description}",
        f"a statement reads: {syntax}",
    )
