"""CREATE CAMPAIGN trees to checked `Campaign`s, or a `DefinitionError` at the offending value.

Intervals, names and suggestions are read the way segments read them (`segql.check.Checker`),
so '30 minutes' means the same in a campaign as in a `within =>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import NoReturn
from urllib.parse import urlsplit

from sqlglot import exp

from segql.campaigns import payload
from segql.campaigns.parse import CAMPAIGN_SYNTAX, CreateCampaign
from segql.check import MAX_NAME_BYTES, NAME_RE, Checker, _suggest
from segql.diagnostics import DefinitionError, SourceFile, Span
from segql.parse import Statement, span_of

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_LIMIT = 1_000_000
_SAMPLE_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Campaign:
    """A checked campaign. Intervals are in seconds. Two campaigns are equal when they mean the
    same thing, whatever their layout (text, source and span are not compared)."""

    name: str
    comment: str | None
    kind: str  # 'enter' | 'exit'
    segment: str
    url: str
    after: Decimal | None = None
    limit: int | None = None
    per: Decimal | None = None
    quiet: tuple[time, time] | None = None
    payload: str | None = None
    text: str = field(default="", compare=False)
    source: str = field(default="", compare=False)
    span: Span = field(default=Span(0, 0), compare=False)


def is_campaign(stmt: Statement) -> bool:
    return isinstance(stmt.tree, CreateCampaign)


def check(statements: Iterable[Statement], segments: Iterable[str]) -> list[Campaign]:
    """Check campaign statements against the segments that will exist after the deploy."""
    known = set(segments)
    out: list[Campaign] = []
    seen: dict[str, Campaign] = {}
    for stmt in statements:
        campaign = _CampaignChecker(stmt, known).campaign()
        first = seen.get(campaign.name)
        if first is not None:
            _fail(
                stmt.source,
                campaign.span,
                f"campaign '{campaign.name}' is defined twice (first at {first.source})",
                "give each campaign a unique name, or delete one of the definitions",
            )
        seen[campaign.name] = campaign
        out.append(campaign)
    return out


class _CampaignChecker:
    def __init__(self, stmt: Statement, segments: set[str]) -> None:
        self.stmt = stmt
        self.source = stmt.source
        self.segments = segments
        tree = stmt.tree
        assert isinstance(tree, CreateCampaign)
        self.tree = tree
        self.intervals = Checker(segments)
        self.intervals.source = stmt.source

    def campaign(self) -> Campaign:
        name, span = self.name()
        args = self.tree.args
        limit, per = self.cap()
        return Campaign(
            name=name,
            comment=self.text("comment"),
            kind=str(args["kind"].name),
            segment=self.segment(name),
            url=self.url(),
            after=self.interval("after", "AFTER '30 minutes'", allow_zero=True),
            limit=limit,
            per=per,
            quiet=self.quiet(),
            payload=self.payload(),
            text=self.stmt.text.strip(),
            source=self.source.path,
            span=span,
        )

    def name(self) -> tuple[str, Span]:
        ident = self.tree.this
        span = span_of(ident, self.source)
        name = str(ident.this).lower()
        if ident.args.get("quoted") or not NAME_RE.match(name):
            self.fail(
                span,
                f"'{ident.this}' is not a valid campaign name",
                "use lower-case letters, digits and underscores, unquoted, starting with a letter",
            )
        if len(name.encode()) > MAX_NAME_BYTES:
            self.fail(
                span, f"campaign name '{name}' is too long", f"use at most {MAX_NAME_BYTES} bytes"
            )
        if name in self.segments:
            self.fail(
                span,
                f"'{name}' is already the name of a segment",
                "give the campaign its own name (segql drop NAME must know which one you mean)",
            )
        return name, span

    def segment(self, campaign: str) -> str:
        ident = self.tree.args["segment"]
        name = str(ident.this).lower()
        if name not in self.segments:
            self.fail(
                span_of(ident, self.source),
                f"campaign '{campaign}' reads unknown segment '{name}'",
                _suggest(
                    name,
                    self.segments,
                    "define the segment in one of the files, or deploy it first",
                ),
            )
        return name

    def url(self) -> str:
        node = self.tree.args["url"]
        url = str(node.this).strip()
        span = span_of(node, self.source)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(
                span,
                f"'{url}' is not an http(s) URL",
                "write SEND WEBHOOK 'https://hooks.example.com/path'",
            )
        if parts.username or parts.password:
            self.fail(
                span,
                "the webhook URL cannot carry a user or password",
                "the receiver checks the webhook-signature header instead",
            )
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            self.fail(span, f"'{url}' has an invalid port", "write a port from 1 to 65535")
        return url

    def interval(self, key: str, example: str, *, allow_zero: bool = False) -> Decimal | None:
        node = self.tree.args.get(key)
        if node is None:
            return None
        span = span_of(node, self.source)
        secs = self.intervals.parse_interval(str(node.this), span)
        if secs < 0 or (secs == 0 and not allow_zero):
            self.fail(span, f"'{node.this}' must be a positive interval", f"write e.g. {example}")
        return secs

    def cap(self) -> tuple[int | None, Decimal | None]:
        node = self.tree.args.get("limit")
        if node is None:
            return None, None
        text = str(node.this)
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            self.fail(
                span_of(node, self.source),
                f"LIMIT {text} is not a whole number from 1 to {MAX_LIMIT}",
                "write e.g. LIMIT 1 PER '24 hours'",
            )
        return int(text), self.interval("per", "PER '24 hours'")

    def quiet(self) -> tuple[time, time] | None:
        start, end = self.tree.args.get("quiet_from"), self.tree.args.get("quiet_to")
        if start is None or end is None:
            return None
        window = (self.clock(start), self.clock(end))
        if window[0] == window[1]:
            self.fail(
                span_of(end, self.source),
                "QUIET HOURS starts and ends at the same time",
                "write a window such as QUIET HOURS '22:00' TO '08:00'",
            )
        return window

    def clock(self, node: exp.Expression) -> time:
        match = _CLOCK.match(str(node.this).strip())
        if match is None:
            self.fail(
                span_of(node, self.source),
                f"'{node.this}' is not a time of day",
                "write 24-hour HH:MM, e.g. QUIET HOURS '22:00' TO '08:00'",
            )
        return time(int(match.group(1)), int(match.group(2)))

    def payload(self) -> str | None:
        node = self.tree.args.get("payload")
        if node is None:
            return None
        text = str(node.this)
        sample = payload.context(
            campaign="sample",
            segment="sample",
            kind="enter",
            user_id="sample-user",
            at=_SAMPLE_AT,
            cause="event",
            seq=1,
            traits={},
        )
        try:
            payload.render_data(payload.compile_template(text), sample)
        except payload.PayloadError as err:
            self.fail(
                span_of(node, self.source),
                f"the PAYLOAD template does not give JSON for a sample user: {err}",
                "write JSON with values such as {{ user_id | tojson }} or "
                "{{ traits.plan | tojson }} (a missing trait gives null)",
            )
        return text

    def text(self, key: str) -> str | None:
        node = self.tree.args.get(key)
        return None if node is None else str(node.this)

    def fail(self, span: Span, problem: str, fix: str = "") -> NoReturn:
        _fail(self.source, span, problem, fix or f"a campaign reads: {CAMPAIGN_SYNTAX}")


def _fail(source: SourceFile, span: Span, problem: str, fix: str) -> NoReturn:
    raise DefinitionError(source, span, problem, fix)
