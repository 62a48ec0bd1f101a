"""Where in a definition file something went wrong, shown the way a compiler shows it."""

from __future__ import annotations

from dataclasses import dataclass, field

from segql.errors import SegqlError


@dataclass(frozen=True)
class Token:
    """A token of a definition file: its kind (sqlglot's token type name) and inclusive offsets."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class SourceFile:
    """The text of one definition file and the name to report it under.

    `tokens` lets an error point at a keyword the syntax tree keeps no position for (INTERVAL,
    CASE, current_user, a placeholder).
    """

    path: str
    text: str
    tokens: tuple[Token, ...] = field(default=(), compare=False, repr=False)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        line_start = self.text.rfind("\n", 0, offset) + 1
        return line, offset - line_start + 1

    def excerpt(self, start: int, end: int) -> str:
        """The line holding `start`, with the span start..end (inclusive) underlined."""
        line_no, col = self.position(start)
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", start)
        if line_end == -1:
            line_end = len(self.text)
        line = self.text[line_start:line_end]
        width = max(1, min(end, line_end - 1) - start + 1)
        gutter = f"{line_no:>4} | "
        return f"{gutter}{line}\n{' ' * (len(gutter) - 2)}| {' ' * (col - 1)}{'^' * width}"


@dataclass(frozen=True)
class Span:
    """Inclusive character offsets of a piece of a definition."""

    start: int
    end: int


class DefinitionError(SegqlError):
    """A segment definition is invalid."""

    def __init__(self, source: SourceFile, span: Span, problem: str, fix: str = "") -> None:
        self.source = source
        self.span = span
        self.problem = problem
        self.fix = fix
        self.line, self.col = source.position(span.start)
        where = f"{source.path}:{self.line}:{self.col}"
        message = f"{where}: {problem}\n{source.excerpt(span.start, span.end)}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)
