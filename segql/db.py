"""Where the database is and how to reach it."""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from segql.errors import ConfigError

ENV_VARS = ("SEGQL_DATABASE_URL", "DATABASE_URL")


def resolve_url(cli_value: str | None = None) -> str:
    """`--database-url`, then $SEGQL_DATABASE_URL, then $DATABASE_URL, else the embedded server."""
    if cli_value:
        return cli_value
    for var in ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    from segql import embedded  # only pay for importing the embedded server when it is used

    return embedded.database_url()


def url_source(cli_value: str | None) -> str:
    """Where the URL `resolve_url` returns comes from, for messages: the option or the variable.

    The CLI option reads both variables itself, so a value equal to one of them came from it.
    """
    for var in ENV_VARS:
        value = os.environ.get(var)
        if value:
            return f"${var}" if cli_value in (None, value) else "--database-url"
    return "--database-url" if cli_value else "the embedded server"


def check_url(url: str, source: str) -> None:
    """Refuse a URL that libpq cannot read, naming where it came from."""
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ConfigError(
            f"{source} is not a PostgreSQL URL ({reason}); write e.g. "
            "postgresql://user:password@host:5432/dbname"
        ) from None


def connect_error(exc: psycopg.OperationalError, url: str, source: str) -> ConfigError:
    """A failed connection as a message that says which URL, from where, and what to do."""
    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    message = message.removeprefix("connection failed: ")
    shown = f"{mask_password(url)} (from {source})"
    dbname = database_name(url)
    if "does not exist" in text and dbname and f'database "{dbname}"' in text:
        return ConfigError(
            f"cannot connect to {shown}: database '{dbname}' does not exist. Create it "
            f"(createdb {dbname}, or CREATE DATABASE {dbname}; in psql) or point {source} at "
            "an existing database"
        )
    if "password authentication failed" in text or "no password supplied" in text:
        fix = f"check the user and password in {source}"
    elif "Connection refused" in text or "resolve host" in text or "translate host" in text:
        fix = f"check that PostgreSQL runs there and the host and port in {source}"
    else:
        fix = f"check {source}"
    return ConfigError(f"cannot connect to {shown}: {message}; {fix}")


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, application_name="segql")


def is_embedded(url: str) -> bool:
    """True when `url` points at the embedded server of the current SEGQL_HOME."""
    from segql import embedded

    host = str(conninfo_to_dict(url).get("host") or "")
    return host.startswith(str(embedded.pgdata_dir())) or "python_PostgresServer" in host


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    if "://" in url:
        parts = urlsplit(url)
        # urlunsplit would drop the empty authority of "postgresql:///db?host=/socket/dir"
        query = f"?{parts.query}" if parts.query else ""
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return f"{parts.scheme}://{parts.netloc}/{quote(database, safe='')}{query}{fragment}"
    return make_conninfo(url, dbname=database)


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "")


def mask_password(url: str) -> str:
    """The URL fit for printing: any password replaced by ***."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password:
            userinfo = f"{parts.username or ''}:***"
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
        return url
    params = conninfo_to_dict(url)
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo("", **params)


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL, using the psycopg 3 driver.

    Parameters SQLAlchemy has no slot for (a unix socket directory in `host`, sslmode, ...) go to
    the query string, which the psycopg dialect passes through to `psycopg.connect`.
    """
    from sqlalchemy.engine import URL

    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    user = params.pop("user", None)
    password = params.pop("password", None)
    dbname = params.pop("dbname", None)
    host = params.get("host")
    port = params.get("port")
    tcp_host = host is not None and not host.startswith("/") and "," not in host
    if tcp_host:
        params.pop("host")
        if port is not None and port.isdigit():
            params.pop("port")
    rendered = URL.create(
        "postgresql+psycopg",
        username=user,
        password=password,
        host=host if tcp_host else None,
        port=int(port) if tcp_host and port is not None and port.isdigit() else None,
        database=dbname,
        query=params,
    )
    return rendered.render_as_string(hide_password=False)


def with_keepalives(url: str) -> str:
    """TCP keepalives on a listening connection, unless the URL says otherwise: a half-open
    connection (a vanished server, a dropped NAT entry) would never carry another notification
    and never report an error either. libpq ignores them on Unix sockets."""
    params = conninfo_to_dict(url)
    defaults = {
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
    }
    return make_conninfo(url, **{k: v for k, v in defaults.items() if k not in params})
