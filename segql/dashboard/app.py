"""The web app: pages, a JSON API for them, and the live stream over Server-Sent Events."""

from __future__ import annotations

import csv
import hmac
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

import jinja2
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from segql import db, estimate
from segql.dashboard import hub as hub_mod
from segql.dashboard import reads
from segql.deploy import DeployError
from segql.generate import quote_ident

T = TypeVar("T")
TOKEN_COOKIE = "segql_dashboard_token"
RETRY_MS = 1000
PING_SECONDS = 15


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segql.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["iso"] = lambda ts: ts.astimezone(UTC).isoformat(timespec="seconds") if ts else ""
    env.filters["tojson_attr"] = lambda value: json.dumps(value, default=str)
    return env


class TokenCheck(BaseHTTPMiddleware):
    """Every request, the stream included, carries the token: as `?token=` (which also sets a
    cookie, so links and the stream carry it on), a cookie, or `Authorization: Bearer`."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        offered = [
            given,
            request.cookies.get(TOKEN_COOKIE),
            request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None,
        ]
        expected = self.token.encode()
        if not any(o is not None and hmac.compare_digest(o.encode(), expected) for o in offered):
            return PlainTextResponse(
                "401: this dashboard needs its token: open it with ?token=TOKEN "
                "(the value of --token or SEGQL_DASHBOARD_TOKEN).",
                status_code=401,
            )
        response = await call_next(request)
        if given is not None:
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
        return response


def create_app(
    database_url: str,
    *,
    token: str | None = None,
    estimate_timeout: float = estimate.DEFAULT_TIMEOUT,
    poll_interval: float = 5.0,
) -> Starlette:
    """The dashboard for one database; `token` (if any) is required on every request."""
    hub = hub_mod.Hub(database_url, poll_interval=poll_interval)
    templates = _templates()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start()
        await run_in_threadpool(hub.wait_ready, 10.0)
        yield
        await run_in_threadpool(hub.stop)

    def read(fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        def run() -> T:
            with db.connect(database_url, autocommit=True) as conn:
                return fn(conn, *args)

        return run_in_threadpool(run)

    def page(name: str, request: Request, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(request=request, **context)
        return HTMLResponse(html)

    async def overview(request: Request) -> Response:
        rows = await read(reads.segments)
        summaries, now = hub.snapshot()
        stats = {
            r.name: summaries.get(r.name) or hub_mod.Activity(r.size).summary(now or _utcnow())
            for r in rows
        }
        return page("overview.html", request, segments=rows, stats=stats, title="Segments")

    async def segment_page(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            info = await read(reads.segment, name)
        except DeployError as exc:
            return PlainTextResponse(exc.message, status_code=404)
        return page(
            "segment.html", request, seg=info, title=name, view=f"segments.{quote_ident(name)}"
        )

    async def series(request: Request) -> Response:
        span = request.query_params.get("range", "hour")
        if span not in reads.RANGES:
            return JSONResponse({"error": f"range must be one of {', '.join(reads.RANGES)}"}, 400)
        return JSONResponse(await read(reads.size_series, request.path_params["name"], span))

    async def members(request: Request) -> Response:
        q = request.query_params.get("q", "")
        offset = _int(request.query_params.get("offset"), 0)
        return JSONResponse(await read(reads.members_page, request.path_params["name"], q, offset))

    async def members_csv(request: Request) -> Response:
        name = request.path_params["name"]
        q = request.query_params.get("q", "")

        def lines() -> Iterator[str]:
            with db.connect(database_url) as conn:
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerow(["user_id", "since"])
                for user, since in reads.members_all(conn, name, q):
                    writer.writerow([user, since.isoformat()])
                    if out.tell() > 65536:
                        yield out.getvalue()
                        out.seek(0)
                        out.truncate()
                yield out.getvalue()

        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        return StreamingResponse(
            iterate_in_threadpool(lines()), media_type="text/csv", headers=headers
        )

    async def user_page(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        explained = await read(reads.explanations, user_id)
        changes = await read(reads.user_history, user_id)
        return page(
            "user.html",
            request,
            user_id=user_id,
            explained=explained,
            changes=changes,
            intervals=reads.intervals(changes),
            title=f"User {user_id}",
        )

    async def find_user(request: Request) -> Response:
        user_id = request.query_params.get("user_id", "").strip()
        if not user_id:
            return RedirectResponse("/", 303)
        return RedirectResponse(request.url_for("user", user_id=user_id).path, 303)

    async def draft_page(request: Request) -> Response:
        return page("draft.html", request, title="Draft a segment")

    async def draft_estimate(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("definition"), str):
            problem = 'send JSON: {"definition": "CREATE SEGMENT ..."}'
            return JSONResponse({"error": {"message": problem, "problem": problem}}, 400)
        text = body["definition"]
        return JSONResponse(await read(reads.draft, text, estimate_timeout))

    async def stream(request: Request) -> Response:
        segment = request.query_params.get("segment") or None
        with_changes = request.query_params.get("changes", "1") != "0"
        last = request.headers.get("last-event-id") or request.query_params.get("after")
        opened, caught_up = hub.open(segment, _int(last, None), with_changes)
        if caught_up is None and last is not None:
            caught_up = await read(hub_mod.replay, segment, int(last))
            if caught_up is None:
                hub.close(opened)
                return EventSourceResponse(_reload())

        async def events() -> AsyncIterator[ServerSentEvent]:
            # Changes read back from the log may also come from the hub: sent once.
            seen = {c.seq for c in caught_up or []}
            try:
                summaries, now = hub.snapshot()
                if segment is not None:
                    summaries = {k: v for k, v in summaries.items() if k == segment}
                changes = caught_up or []
                position = max([hub.position or 0, *(c.seq for c in changes)]) or None
                yield _event(hub_mod.Update(changes, summaries, now or _utcnow(), position))
                while True:
                    update = await opened.queue.get()
                    if update == hub_mod.END:
                        return
                    if not isinstance(update, hub_mod.Update):
                        yield ServerSentEvent(data="{}", event="reload")
                        return
                    fresh = hub_mod.unseen(update.changes, seen) if seen else update.changes
                    yield _event(
                        hub_mod.Update(fresh, update.segments, update.now, update.position)
                    )
            finally:
                hub.close(opened)

        return EventSourceResponse(events(), ping=PING_SECONDS)

    routes = [
        Route("/", overview),
        Route("/segments/{name}", segment_page, name="segment"),
        Route("/segments/{name}/members.csv", members_csv, name="members_csv"),
        Route("/api/segments/{name}/series", series),
        Route("/api/segments/{name}/members", members),
        Route("/users/{user_id:path}", user_page, name="user"),
        Route("/user", find_user),
        Route("/draft", draft_page),
        Route("/api/estimate", draft_estimate, methods=["POST"]),
        Route("/stream", stream),
        Mount(
            "/static",
            StaticFiles(directory=str(resources.files("segql.dashboard").joinpath("static"))),
            name="static",
        ),
    ]
    middleware = [Middleware(TokenCheck, token=token)] if token else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.hub = hub
    return app


async def _reload() -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data="{}", event="reload")


def _event(update: hub_mod.Update) -> ServerSentEvent:
    """One batch; its id is the seq of the last change the hub had delivered by then."""
    ident = str(update.position) if update.position is not None else None
    data = {
        "now": update.now.astimezone(UTC).isoformat(),
        "changes": [c.as_json() for c in update.changes],
        "segments": update.segments,
    }
    return ServerSentEvent(data=json.dumps(data), event="update", id=ident, retry=RETRY_MS)


def _int(text: str | None, default: Any) -> Any:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = ["create_app"]
