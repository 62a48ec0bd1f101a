"""Models in the catalog: their definitions, their trained versions, and which one is live."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from segql import ir
from segql.errors import SegqlError
from segql.models.check import ModelDef, check
from segql.models.parse import ModelDialect
from segql.models.spec import Models, Trained
from segql.parse import Statement, parse_text


class ModelError(SegqlError):
    """A model command cannot go ahead."""


@dataclass
class ModelResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # a new target: untrained until retrained
    unchanged: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Deployed:
    model: ModelDef
    version: int  # the live trained version, 0 for none


def load(conn: psycopg.Connection) -> Models:
    """Every deployed model with its live trained version (None when untrained)."""
    rows = conn.execute(
        "SELECT m.name, m.version, v.spec FROM segql.models m "
        "LEFT JOIN segql.model_versions v ON v.name = m.name AND v.version = m.version"
    ).fetchall()
    return {
        name: Trained.from_json(version, spec) if spec is not None else None
        for name, version, spec in rows
    }


def names(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM segql.models")}


def drop_models(conn: psycopg.Connection, names: set[str]) -> list[str]:
    """Remove models and every trained version of them; their readers are already gone."""
    if not names:
        return []
    dropped = sorted(names)
    conn.execute("DELETE FROM segql.model_versions WHERE name = ANY(%s)", [dropped])
    conn.execute("DELETE FROM segql.models WHERE name = ANY(%s)", [dropped])
    return dropped


def compiled_with(conn: psycopg.Connection) -> dict[str, dict[str, Trained | None]]:
    """For each deployed segment, the versions of the models it was compiled with."""
    rows = conn.execute(
        "SELECT r.segment, r.model, r.version, v.spec FROM segql.model_readers r "
        "LEFT JOIN segql.model_versions v ON v.name = r.model AND v.version = r.version"
    ).fetchall()
    out: dict[str, dict[str, Trained | None]] = {}
    for segment, model, version, spec in rows:
        trained = Trained.from_json(version, spec) if spec is not None else None
        out.setdefault(segment, {})[model] = trained
    return out


def record_readers(conn: psycopg.Connection, segments: Iterable[ir.Segment]) -> None:
    """Remember which model versions the deployed segments read (see compiled_with)."""
    conn.execute("DELETE FROM segql.model_readers")
    for seg in segments:
        for node in ir.walk(seg.condition):
            if isinstance(node, ir.Score):
                conn.execute(
                    "INSERT INTO segql.model_readers (segment, model, version) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [seg.name, node.model, node.version],
                )


def deploy_models(conn: psycopg.Connection, statements: list[Statement]) -> ModelResult:
    """Bring the catalog's models to these definitions (others are kept as they are)."""
    result = ModelResult()
    for model in check(statements):
        row = conn.execute(
            "SELECT fingerprint, comment FROM segql.models WHERE name = %s", [model.name]
        ).fetchone()
        if row is not None and row[0] == model.fingerprint:
            result.unchanged.append(model.name)
            if row[1] != model.comment:
                conn.execute(
                    "UPDATE segql.models SET comment = %s, definition = %s WHERE name = %s",
                    [model.comment, model.text, model.name],
                )
            continue
        (result.changed if row is not None else result.created).append(model.name)
        conn.execute(
            """INSERT INTO segql.models (name, definition, comment, source, horizon_seconds,
                                         fingerprint, version)
               VALUES (%s, %s, %s, %s, %s, %s, 0)
               ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
                   comment = excluded.comment, source = excluded.source,
                   horizon_seconds = excluded.horizon_seconds,
                   fingerprint = excluded.fingerprint, version = 0, defined_at = now()""",
            [model.name, model.text, model.comment, model.source, model.horizon, model.fingerprint],
        )
    return result


def get(conn: psycopg.Connection, name: str) -> Deployed:
    row = conn.execute(
        "SELECT definition, version FROM segql.models WHERE name = %s", [name]
    ).fetchone()
    if row is None:
        raise ModelError(f"model '{name}' is not deployed.{_hint(conn, name)}")
    statements = parse_text(row[0] + ";", f"<deployed model {name}>", ModelDialect)
    return Deployed(check(statements)[0], int(row[1]))


def _hint(conn: psycopg.Connection, name: str) -> str:
    known = [r[0] for r in conn.execute("SELECT name FROM segql.models ORDER BY name")]
    if not known:
        return (
            " No model is deployed: deploy a file with CREATE MODEL <name> PREDICT <condition> "
            "WITHIN '<interval>'."
        )
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Deployed models: {', '.join(known)}."


def save_version(
    conn: psycopg.Connection, model: ModelDef, spec: dict[str, Any], report: dict[str, Any]
) -> int:
    """Store a new trained version and make it the live one; returns its number."""
    row = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM segql.model_versions WHERE name = %s",
        [model.name],
    ).fetchone()
    assert row is not None
    version = int(row[0])
    conn.execute(
        "INSERT INTO segql.model_versions (name, version, definition, spec, report, clock) "
        "VALUES (%s, %s, %s, %s, %s, segql.now())",
        [model.name, version, model.text, json.dumps(spec), json.dumps(report, default=_json)],
    )
    conn.execute("UPDATE segql.models SET version = %s WHERE name = %s", [version, model.name])
    return version


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def listing(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT m.name, m.definition, m.comment, m.version, v.trained_at, "
        "(v.report ->> 'holdout_auc')::float8 FROM segql.models m "
        "LEFT JOIN segql.model_versions v ON v.name = m.name AND v.version = m.version "
        "ORDER BY m.name"
    ).fetchall()
    keys = ("name", "definition", "comment", "version", "trained_at", "holdout_auc")
    return [dict(zip(keys, r, strict=True)) for r in rows]
