"""Load events and profiles from JSON lines or CSV files with COPY.

Every batch is its own transaction, so a large file never becomes one giant transaction and
segql's statement-level triggers run once per batch. A bad row never aborts the load and is never
dropped silently: rows that fail validation here, and rows the server refuses (isolated by
bisecting the failed batch), are written to a reject file and to `segql.rejects`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any, Literal, cast

import psycopg
from psycopg.copy import QueuedLibpqWriter

from segql import run
from segql.errors import IngestError
from segql.sqlfiles import query

Format = Literal["jsonl", "csv"]
Kind = Literal["events", "profiles"]
Progress = Callable[[int, int, int], None]  # (bytes read, rows loaded, rows rejected)

DEFAULT_BATCH_SIZE = 10_000
FORMATS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")

# SQLSTATE classes that mean "this row's data is wrong": isolate the row and go on. Anything
# else (permissions, a missing table, a lost connection) would fail every row alike, so stop.
_ROW_ERROR_CLASSES = ("22", "23", "P0")


class BadRow(Exception):
    """A row that cannot be loaded; the message is the reason recorded with the reject."""


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    raw: str


@dataclass
class IngestResult:
    source: str
    kind: Kind
    loaded: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None
    reject_samples: list[Reject] = field(default_factory=list)
    history: bool = False  # segments were evaluated once, after the last batch
    evaluated: int = 0  # users evaluated after the load (history mode, or an interrupted one)

    @property
    def rows_per_second(self) -> float:
        return (self.loaded + self.rejected) / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Row:
    line: int
    raw: str
    values: tuple[Any, ...]
    kind: Kind = "events"


# --- reading -------------------------------------------------------------------------------------


def detect_format(path: Path, override: str | None = None) -> Format:
    if override:
        if override not in ("jsonl", "csv"):
            raise IngestError(f"unknown format {override!r}: use jsonl or csv")
        return "jsonl" if override == "jsonl" else "csv"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise IngestError(
        f"cannot tell the format of {path.name}: name it .jsonl, .ndjson, .json or .csv "
        "(optionally .gz), or pass --format jsonl|csv"
    )


class _Source:
    """The input file, decompressed if needed, with the compressed byte position for progress."""

    def __init__(self, path: Path) -> None:
        try:
            self.raw: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self.size = path.stat().st_size
        is_gzip = path.suffix.lower() == ".gz"
        self.stream = cast(IO[bytes], gzip.GzipFile(fileobj=self.raw)) if is_gzip else self.raw
        self.text: io.TextIOWrapper | None = None

    def position(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        # The CSV text wrapper owns the stream once made; closing it closes the stream too.
        (self.text or self.stream).close()
        self.raw.close()

    def json_records(self) -> Iterator[tuple[int, str, Any]]:
        """(line, raw text, parsed value or BadRow) per non-blank line."""
        for number, data in enumerate(self.stream, start=1):
            try:
                text = data.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                text = data.decode("utf-8", "replace").rstrip("\r\n")
                yield number, text, BadRow("invalid UTF-8")
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
                if text.lstrip().startswith("["):
                    raise IngestError(
                        "this looks like a JSON array; segql reads JSON lines, one object per "
                        "line (convert with: jq -c '.[]' FILE)"
                    )
            if not text.strip():
                continue
            yield number, text, _parse_json(text)

    def csv_records(self, required: tuple[str, ...]) -> Iterator[tuple[int, str, Any]]:
        """(line, raw text, {column: value} or BadRow) per record, after the header."""
        self.text = io.TextIOWrapper(
            self.stream, encoding="utf-8", errors="surrogateescape", newline=""
        )
        reader = csv.reader(self.text)
        header = next(reader, None)
        if not header:
            raise IngestError("the CSV file is empty; it needs a header row")
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [column for column in required if column not in header]
        if missing:
            raise IngestError(
                f"the CSV header has no {', '.join(missing)} column; it has: {', '.join(header)}"
            )
        previous_end = reader.line_num
        for fields in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not fields:
                continue
            raw = _csv_line(fields)
            if len(fields) != len(header):
                yield line, raw, BadRow(f"expected {len(header)} columns, got {len(fields)}")
            elif any(_has_surrogates(f) for f in fields):
                yield line, raw, BadRow("invalid UTF-8")
            else:
                yield line, raw, dict(zip(header, fields, strict=True))


def _parse_json(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except BadRow as exc:
        return exc
    except ValueError as exc:
        return BadRow(f"invalid JSON: {exc}")


def _reject_constant(name: str) -> Any:
    raise BadRow(f"invalid JSON: {name} is not a JSON number")


# Built once: json.loads/dumps with options construct a new decoder/encoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# --- validating ----------------------------------------------------------------------------------


def parse_ts(value: Any) -> datetime | None:
    """ISO 8601 or epoch seconds; a timestamp without a zone is UTC; None/"" means "now"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRow("ts must be an ISO 8601 string or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        return _from_epoch(value)
    if not isinstance(value, str):
        raise BadRow(f"ts must be an ISO 8601 string or epoch seconds, not {_type_name(value)}")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _from_epoch(float(text) if not _INTEGER.fullmatch(text) else int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRow(f"ts {value!r} is not ISO 8601 or epoch seconds") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise BadRow(f"ts {seconds} is not a finite number of epoch seconds")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        hint = " (milliseconds? ts takes epoch seconds)" if abs(seconds) > 1e11 else ""
        raise BadRow(f"ts {seconds} is out of range{hint}") from None


def _text_field(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None or value == "":
        raise BadRow(f"missing {key}")
    if isinstance(value, int) and not isinstance(value, bool) and key in _ID_KEYS:
        return str(value)  # numeric user ids, as many pipelines emit them, are ids all the same
    if not isinstance(value, str):
        raise BadRow(f"{key} must be a string, not {_type_name(value)}")
    if "\x00" in value:
        raise BadRow(f"{key} contains a NUL character")
    return value


def _json_object(value: Any, key: str) -> str:
    """Serialize a props/traits object; PostgreSQL's jsonb cannot hold NUL characters."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise BadRow(f"{key} must be a JSON object, not {_type_name(value)}")
    text = _ENCODER.encode(value)
    if "\\u0000" in text and _contains_nul(value):
        raise BadRow(f"{key} contains a NUL character")
    return text


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def csv_value(text: str) -> Any:
    """A CSV cell as JSON: integers, decimals and true/false become typed; the rest stays text.

    Numbers with leading zeros ("007", zip codes) stay text because the zeros mean something.
    """
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


def _csv_object(record: dict[str, str], skip: tuple[str, ...], key: str) -> dict[str, Any]:
    """Columns other than `skip` as a JSON object; a `props`/`traits` column holds JSON itself."""
    out: dict[str, Any] = {}
    embedded = record.get(key)
    if embedded:
        parsed = _parse_json(embedded)
        if isinstance(parsed, BadRow) or not isinstance(parsed, dict):
            raise BadRow(f"the {key} column must hold a JSON object")
        out.update(parsed)
    for column, value in record.items():
        if column not in skip and column != key and value != "":
            out[column] = csv_value(value)
    return out


# --- what a record is: segql's own rows, or Segment / RudderStack calls -----------------------

_ID_KEYS = ("user_id", "userId", "anonymousId")
EVENT_KEYS = ("user_id", "name", "ts", "props")
PROFILE_KEYS = ("user_id", "traits")
MAP_TARGETS = (*EVENT_KEYS, "traits", "ignore")
# Keys of the Segment / RudderStack envelope that say nothing about the user's behaviour.
_ENVELOPE = frozenset(
    [
        "type",
        "messageId",
        "context",
        "integrations",
        "originalTimestamp",
        "receivedAt",
        "sentAt",
        "channel",
        "version",
        "writeKey",
        "rudderId",
        "request_ip",
        "_metadata",
        "projectId",
        "anonymousId",
        "userId",
        "timestamp",
    ]
)
_TRACK_KEYS = _ENVELOPE | {"event", "properties"}
_IDENTIFY_KEYS = _ENVELOPE | {"traits"}
_SPEC_MARKS = ("type", "userId", "anonymousId", "event")
# Names other tools give segql's keys, for the reject's did-you-mean.
_ALIASES = {
    "timestamp": "ts",
    "time": "ts",
    "created_at": "ts",
    "properties": "props",
    "event": "name",
    "userId": "user_id",
    "user": "user_id",
    "id": "user_id",
}


def classify(
    record: Any, kind: Kind, fmt: Format, mapping: dict[str, str] | None = None
) -> tuple[Kind, tuple[Any, ...]]:
    """(events|profiles, values) for one parsed record, or BadRow with the reason.

    A JSON record with `type`, `userId`, `anonymousId` or `event` is a Segment / RudderStack
    call, loaded by its type whatever `kind` says; any other is one of segql's own rows of
    `kind`, whose keys must be segql's or mapped (`mapping`: key -> field or "ignore").
    """
    if isinstance(record, BadRow):
        raise record
    if not isinstance(record, dict):
        raise BadRow(f"each line must be a JSON object, not {_type_name(record)}")
    if mapping:
        record = _apply_mapping(record, mapping)
    if fmt == "jsonl" and any(k in record for k in _SPEC_MARKS):
        return _spec_call(record)
    if fmt == "jsonl":
        _check_keys(record, kind)
    if kind == "profiles":
        return "profiles", profile_values(record, fmt)
    return "events", event_values(record, fmt)


def _apply_mapping(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        target = mapping.get(key, key)
        if target != "ignore":
            out[target] = value
    return out


def _check_keys(record: dict[str, Any], kind: Kind) -> None:
    known = PROFILE_KEYS if kind == "profiles" else EVENT_KEYS
    unknown = [k for k in record if k not in known]
    if not unknown:
        return
    listed = ", ".join(repr(k) for k in unknown)
    if kind == "profiles" and {"name", "ts", "props"} & set(unknown):
        raise BadRow(
            f"unknown key(s) {listed} for a profile: this looks like an event; "
            "load events without --profiles"
        )
    if kind == "events" and "traits" in unknown:
        raise BadRow("unknown key 'traits' for an event: load profiles with --profiles")
    hints = [f"'{k}' -> '{_ALIASES[k]}'" for k in unknown if _ALIASES.get(k) in known]
    fix = f"did you mean {', '.join(hints)}? " if hints else ""
    first = unknown[0]
    target = _ALIASES.get(first, "props" if kind == "events" else "traits")
    raise BadRow(
        f"unknown key(s) {listed} (a{'' if kind == 'events' else ' profile'} row has "
        f"{', '.join(known)}); {fix}map keys with --map {first}={target} or "
        f"--map {first}=ignore"
    )


def _spec_call(record: dict[str, Any]) -> tuple[Kind, tuple[Any, ...]]:
    """A Segment / RudderStack `track` or `identify` call."""
    call = record.get("type")
    if call is None:
        call = "track" if "event" in record else "identify" if "traits" in record else None
    if call not in ("track", "identify"):
        what = f"type {call!r}" if call is not None else "no type, event or traits"
        raise BadRow(f"a Segment/RudderStack call with {what}: segql loads track and identify")
    allowed = _TRACK_KEYS if call == "track" else _IDENTIFY_KEYS
    unknown = [k for k in record if k not in allowed]
    if unknown:
        raise BadRow(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)} in a {call} call; "
            f"map them with --map {unknown[0]}=ignore (or props, traits)"
        )
    user_id = _spec_user(record)
    if call == "identify":
        traits = record.get("traits")
        _json_object(traits, "traits")
        return "profiles", (user_id, traits or {})
    name = _text_field(record, "event")
    ts = parse_ts(record.get("timestamp", record.get("originalTimestamp")))
    return "events", (user_id, name, ts, _json_object(record.get("properties"), "properties"))


def _spec_user(record: dict[str, Any]) -> str:
    for key in ("userId", "anonymousId"):
        if record.get(key) not in (None, ""):
            return _text_field(record, key)
    raise BadRow("missing userId (and anonymousId)")


def parse_mapping(items: list[str]) -> dict[str, str]:
    """`--map KEY=FIELD` options as {KEY: FIELD}; FIELD is one of MAP_TARGETS."""
    mapping: dict[str, str] = {}
    for item in items:
        key, sep, target = item.partition("=")
        if not sep or not key or target not in MAP_TARGETS:
            raise IngestError(
                f"--map {item!r}: write KEY=FIELD, FIELD one of {', '.join(MAP_TARGETS)}"
            )
        mapping[key] = target
    return mapping


def event_values(record: Any, fmt: Format) -> tuple[Any, ...]:
    """(user_id, name, ts or None, props JSON) from one parsed record, or BadRow."""
    if isinstance(record, BadRow):
        raise record
    if not isinstance(record, dict):
        raise BadRow(f"each line must be a JSON object, not {_type_name(record)}")
    user_id = _text_field(record, "user_id")
    name = _text_field(record, "name")
    ts = parse_ts(record.get("ts"))
    if fmt == "csv":
        props: Any = _csv_object(record, ("user_id", "name", "ts"), "props")
    else:
        props = record.get("props")
    return user_id, name, ts, _json_object(props, "props")


def profile_values(record: Any, fmt: Format) -> tuple[str, dict[str, Any]]:
    if isinstance(record, BadRow):
        raise record
    if not isinstance(record, dict):
        raise BadRow(f"each line must be a JSON object, not {_type_name(record)}")
    user_id = _text_field(record, "user_id")
    traits = _csv_object(record, ("user_id",), "traits") if fmt == "csv" else record.get("traits")
    _json_object(traits, "traits")
    return user_id, traits or {}


# --- loading -------------------------------------------------------------------------------------


class _RejectSink:
    """Writes rejects to the file (opened on the first one) and to segql.rejects."""

    def __init__(self, source: str, path: Path, result: IngestResult) -> None:
        self.source, self.path, self.result = source, path, result
        self.file: IO[str] | None = None

    def add(self, conn: psycopg.Connection, rejects: list[Reject]) -> None:
        if not rejects:
            return
        if self.file is None:
            self.file = self.path.open("w", encoding="utf-8")
            self.result.rejects_path = self.path
        for reject in rejects:
            record = {"line": reject.line, "reason": reject.reason, "raw": reject.raw}
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.file.flush()
        params = [
            {"source": self.source, "line": r.line, "reason": r.reason, "raw": _db_safe(r.raw)}
            for r in rejects
        ]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(query("insert_reject"), params)
        self.result.rejected += len(rejects)
        room = 20 - len(self.result.reject_samples)
        self.result.reject_samples.extend(rejects[: max(room, 0)])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _db_safe(raw: str) -> str:
    return raw.replace("\x00", "\\u0000")


def _is_row_error(exc: psycopg.Error) -> bool:
    return bool(exc.sqlstate) and str(exc.sqlstate)[:2] in _ROW_ERROR_CLASSES


def _server_reason(exc: psycopg.Error) -> str:
    message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
    return f"refused by the database: {message}"


class _Loader:
    """Loads batches; on a row-level server error, bisects the batch to find the bad rows."""

    def __init__(
        self, conn: psycopg.Connection, kind: Kind, sink: _RejectSink, defer: bool = False
    ) -> None:
        self.conn, self.kind, self.sink, self.defer = conn, kind, sink, defer

    def load_next(self, rows: Iterator[_Row], size: int) -> tuple[int, int]:
        """Load up to `size` rows from the stream as one transaction: (rows taken, loaded).

        Events are parsed while they are copied, so Python and the server work at the same time.
        """
        taken: list[_Row] = []
        try:
            with self.conn.transaction():
                self._copy(islice(rows, size), taken)
            return len(taken), len(taken)
        except psycopg.Error as exc:
            if self.conn.closed or not _is_row_error(exc):
                raise
            taken.extend(islice(rows, size - len(taken)))
            return len(taken), self._bisect(taken)

    def _bisect(self, rows: list[_Row]) -> int:
        middle = len(rows) // 2
        return self._load_list(rows[:middle]) + self._load_list(rows[middle:])

    def _load_list(self, rows: list[_Row]) -> int:
        if not rows:
            return 0
        try:
            with self.conn.transaction():
                self._copy(iter(rows), [])
            return len(rows)
        except psycopg.Error as exc:
            if self.conn.closed or not _is_row_error(exc):
                raise
            if len(rows) == 1:
                self.sink.add(self.conn, [Reject(rows[0].line, _server_reason(exc), rows[0].raw)])
                return 0
            return self._bisect(rows)

    def _copy(self, rows: Iterator[_Row], taken: list[_Row]) -> None:
        """Copy events as they are parsed; profile rows (identify calls, or a --profiles
        load) are merged after them, in the same transaction."""
        if self.defer:
            self.conn.execute(query("defer_evaluation"))
        profiles: list[_Row] = []
        events = _divert(rows, taken, profiles)
        first = next(events, None)
        if first is not None:
            self._copy_events(chain([first], events))
        if profiles:
            self._copy_profiles(profiles)

    def _copy_events(self, rows: Iterator[_Row]) -> None:
        # Rows without ts get the clock's value: inside this transaction it equals the column
        # default, and it keeps COPY to one column list.
        fetched = self.conn.execute("SELECT segql.now()").fetchone()
        assert fetched is not None
        now: datetime = fetched[0]
        statement = query("copy_events_with_ts")
        # The queued writer sends from a thread, so parsing goes on while data is on the wire.
        with self.conn.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
            chunk: list[str] = []
            for row in rows:
                chunk.append(_event_copy_line(row.values, now))
                if len(chunk) >= _COPY_CHUNK:
                    copy.write("".join(chunk))
                    chunk.clear()
            copy.write("".join(chunk))

    def _copy_profiles(self, rows: list[_Row]) -> None:
        with self.conn.cursor() as cur:
            cur.execute(query("create_profiles_stage"))
            with cur.copy(query("copy_profiles_stage")) as copy:
                for user_id, traits in _fold_profiles(rows).items():
                    copy.write_row((user_id, _ENCODER.encode(traits)))
            cur.execute(query("merge_profiles_stage"))


def _divert(rows: Iterator[_Row], taken: list[_Row], profiles: list[_Row]) -> Iterator[_Row]:
    """The event rows of `rows`; every row goes to `taken`, profile rows also to `profiles`."""
    for row in rows:
        taken.append(row)
        if row.kind == "profiles":
            profiles.append(row)
        else:
            yield row


_COPY_CHUNK = 2000  # rows per write: big enough to amortise calls, small enough to overlap


def _copy_field(text: str) -> str:
    """Escape a value for COPY's text format."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _event_copy_line(values: tuple[Any, ...], now: datetime) -> str:
    # Building COPY text directly is several times cheaper per row than write_row().
    user_id, name, ts, props = values
    stamp = (now if ts is None else ts).isoformat()
    return f"{_copy_field(user_id)}\t{_copy_field(name)}\t{stamp}\t{_copy_field(props)}\n"


def _fold_profiles(rows: list[_Row]) -> dict[str, dict[str, Any]]:
    """One traits object per user, later lines winning, as if each line were merged in order."""
    folded: dict[str, dict[str, Any]] = {}
    for row in rows:
        user_id, traits = row.values
        folded.setdefault(user_id, {}).update(traits)
    return folded


def _rows(
    source: _Source,
    kind: Kind,
    fmt: Format,
    rejects: list[Reject],
    mapping: dict[str, str] | None = None,
) -> Iterator[_Row]:
    required: tuple[str, ...] = ("user_id",) if kind == "profiles" else ("user_id", "name")
    if fmt == "csv" and mapping:
        renamed = {mapping[k] for k in mapping if mapping[k] != "ignore"}
        required = tuple(c for c in required if c not in renamed)
    records = source.csv_records(required) if fmt == "csv" else source.json_records()
    for line, raw, record in records:
        try:
            row_kind, values = classify(record, kind, fmt, mapping)
            yield _Row(line, raw, values, row_kind)
        except BadRow as exc:
            rejects.append(Reject(line, str(exc), raw))


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.jsonl")


def ingest(
    conn: psycopg.Connection,
    path: Path | str,
    *,
    kind: Kind = "events",
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_path: Path | str | None = None,
    progress: Progress | None = None,
    history: bool | None = None,
    mapping: dict[str, str] | None = None,
) -> IngestResult:
    """Load a file of events or profiles; see `ingest_events` and `ingest_profiles`.

    `history`: evaluate segments once after the last batch instead of after each one (True),
    per batch (False), or once at the end whenever the file holds more than one batch (None).
    `mapping`: {key in the file: segql field or "ignore"}, see `classify`.
    """
    path = Path(path)
    if batch_size < 1:
        raise IngestError("--batch-size must be at least 1")
    file_format = detect_format(path, fmt)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # Inside an open transaction every batch would become a savepoint of it, and a large
        # load would turn into the one giant transaction batching exists to avoid.
        raise IngestError("ingest needs a connection outside a transaction: commit first")
    result = IngestResult(source=str(path), kind=kind)
    sink = _RejectSink(str(path), Path(rejects_path or default_rejects_path(path)), result)
    source = _Source(path)
    started = time.perf_counter()
    try:
        pending: list[Reject] = []
        rows = _rows(source, kind, file_format, pending, mapping)
        if history is None:
            # Judging segments on the first batches of a longer file logs enters and exits
            # that the rest of the file undoes; one batch is judged whole either way.
            head = list(islice(rows, batch_size + 1))
            history = len(head) > batch_size
            rows = chain(head, rows)
        result.history = history
        loader = _Loader(conn, kind, sink, defer=history)
        while True:
            taken, loaded = loader.load_next(rows, batch_size)
            result.loaded += loaded
            sink.add(conn, pending)
            pending.clear()
            if progress:
                progress(source.position(), result.loaded, result.rejected)
            if taken < batch_size:
                break
        result.evaluated = evaluate_deferred(conn)
    finally:
        source.close()
        sink.close()
        result.seconds = time.perf_counter() - started
    if progress:
        progress(source.size, result.loaded, result.rejected)
    return result


def evaluate_deferred(conn: psycopg.Connection, chunk: int = run.REFRESH_CHUNK) -> int:
    """Evaluate the users a history load recorded, at the current clock, `chunk` users per
    transaction (cause 'history'); returns how many. Also finishes an interrupted load's.
    `segql.evaluate_deferred` runs with the owner's rights, so an ingest-only role may call it."""
    total = 0
    while True:
        with conn.transaction():
            row = conn.execute(query("evaluate_deferred"), {"limit": chunk}).fetchone()
        done = int(row[0]) if row else 0
        total += done
        if done < chunk:
            return total


def ingest_events(conn: psycopg.Connection, path: Path | str, **options: Any) -> IngestResult:
    """Load events (`user_id`, `name`, `ts`, `props`) from JSON lines or CSV into segql.events.

    Options: fmt ("jsonl"/"csv", else from the extension), batch_size, rejects_path (default
    FILE.rejects.jsonl), progress (called after each batch with bytes read, loaded, rejected).
    The connection must not be in autocommit mode; each batch commits on its own.
    """
    return ingest(conn, path, kind="events", **options)


def ingest_profiles(conn: psycopg.Connection, path: Path | str, **options: Any) -> IngestResult:
    """Merge profiles (`user_id`, `traits`) into segql.profiles: traits = old || new."""
    return ingest(conn, path, kind="profiles", **options)
