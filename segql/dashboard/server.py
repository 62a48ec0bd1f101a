"""Running the dashboard: in the foreground (`segql dashboard`) or in a thread (`segql demo`)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

from segql.dashboard.app import create_app
from segql.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Anything beyond loopback sees members and definitions: it needs a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"serving on {host} exposes the dashboard beyond this machine; set a token with "
            "--token or SEGQL_DASHBOARD_TOKEN (browsers then open it with ?token=...)"
        )


def url(host: str, port: int, token: str | None = None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,  # open streams never finish by themselves
    )
    return uvicorn.Server(config)


def serve(database_url: str, host: str, port: int, token: str | None = None) -> None:
    """Serve until interrupted."""
    check_exposure(host, token)
    _server(create_app(database_url, token=token), host, port).run()


class Background:
    """A dashboard served from a thread of this process; `stop()` ends it."""

    def __init__(
        self, database_url: str, host: str = DEFAULT_HOST, port: int = 0, token: str | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.token = token
        check_exposure(host, token)
        self.app = create_app(database_url, token=token)
        self._server = _server(self.app, host, self.port)
        self._thread = threading.Thread(
            target=self._server.run, name="segql-dashboard", daemon=True
        )

    @property
    def url(self) -> str:
        return url(self.host, self.port, self.token)

    def start(self, timeout: float = 20.0) -> Background:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the dashboard could not start on {self.host}:{self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.app.state.hub.end_streams()
        self._server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join(15)
        self.app.state.hub.stop()

    def __enter__(self) -> Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
