"""The webhook body: the default envelope, or a PAYLOAD template rendered once per delivery.

Templates are Jinja in a sandbox (a definition file must not reach Python's internals) with
StrictUndefined for variables, so a typo fails at deploy; a trait the user does not have reads
as None, so `{{ traits.plan | tojson }}` gives null rather than an error at delivery time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

VARIABLES = ("user_id", "traits", "campaign", "segment", "kind", "at", "cause", "seq")
EVENT_TYPES = {"enter": "segment.entered", "exit": "segment.exited"}

_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class PayloadError(Exception):
    """A template that fails to compile, to render or to give JSON; the message says which."""


class _Traits(dict[str, Any]):
    def __missing__(self, key: str) -> None:
        return None


def compile_template(text: str) -> jinja2.Template:
    try:
        unknown = sorted(meta.find_undeclared_variables(_ENV.parse(text)) - set(VARIABLES))
        template = _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as err:
        raise PayloadError(f"line {err.lineno} of the template: {err.message}") from None
    if unknown:
        raise PayloadError(
            f"'{unknown[0]}' is not defined; the variables are: {', '.join(VARIABLES)}"
        )
    return template


def render_data(template: jinja2.Template, context: dict[str, Any]) -> Any:
    """The JSON value a template gives for one delivery."""
    values = {**context, "traits": _Traits(context.get("traits") or {})}
    try:
        text = template.render(values)
    except jinja2.UndefinedError as err:
        raise PayloadError(f"{err.message}; the variables are: {', '.join(VARIABLES)}") from None
    except Exception as err:  # a sandbox violation or a filter's error: the template's fault
        raise PayloadError(f"{type(err).__name__}: {err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise PayloadError(
            f"it renders to {shown!r}, which is not JSON ({err.msg} at character {err.pos})"
        ) from None


def envelope(kind: str, at: datetime, data: Any) -> str:
    """The bytes to sign and send, fixed at planning so that every retry sends the same ones."""
    body = {"type": EVENT_TYPES[kind], "timestamp": iso(at), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def context(
    *,
    campaign: str,
    segment: str,
    kind: str,
    user_id: str,
    at: datetime,
    cause: str,
    seq: int,
    traits: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "segment": segment,
        "kind": kind,
        "user_id": user_id,
        "at": iso(at),
        "cause": cause,
        "seq": seq,
        "traits": traits or {},
    }


def default_data(ctx: dict[str, Any], version: int) -> dict[str, Any]:
    """`data` without a PAYLOAD: the change itself."""
    out = {k: ctx[k] for k in ("campaign", "segment", "user_id", "kind", "at", "cause", "seq")}
    out["version"] = version
    return out
