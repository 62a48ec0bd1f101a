"""The `segql` command: global options, command registration and the one error boundary."""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from typing import NoReturn

import psycopg
import typer
from typer.models import OptionInfo

from segql import __version__
from segql.commands import AppState, register_all
from segql.errors import SegqlError, from_psycopg

app = typer.Typer(
    name="segql",
    help="Real-time customer segmentation inside PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: "[default: ...]" must not be read as markup and vanish.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segql {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar=["SEGQL_DATABASE_URL", "DATABASE_URL"],
        help="PostgreSQL URL. Without one, segql runs an embedded server in $SEGQL_HOME.",
        show_envvar=True,
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="SEGQL_DEBUG", help="Show tracebacks on errors."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Real-time customer segmentation inside PostgreSQL."""
    global _debug
    _debug = debug
    ctx.obj = AppState(database_url_option=database_url, debug=debug)


register_all(app)


def _plain_flags(typer_app: typer.Typer) -> None:
    """Flags take no value, so their help shows no `<bool>` type: an empty metavar for every
    boolean option of every command, sub-apps included."""
    for command in typer_app.registered_commands:
        for param in inspect.signature(command.callback).parameters.values():  # type: ignore[arg-type]
            info, flag = param.default, param.annotation in (bool, "bool", "bool | None")
            if flag and isinstance(info, OptionInfo) and info.metavar is None:
                info.metavar = ""
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _plain_flags(group.typer_instance)


_plain_flags(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every error a user can act on ends as `Error: ...` and exit 1."""
    try:
        _run(argv)
    except BrokenPipeError:
        _reader_left()
    except SegqlError as exc:
        _fail(exc, exc.message)
    except psycopg.Error as exc:
        _fail(exc, from_psycopg(exc).message)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


def _fail(exc: BaseException, message: str) -> NoReturn:
    if _debug or "--debug" in sys.argv:
        traceback.print_exception(exc)
    typer.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _run(argv: list[str] | None) -> None:
    try:
        app(args=argv, prog_name="segql")
    except SystemExit:
        # Click (vendored by typer) turns a closed pipe into a silent exit 1 and wraps stdout.
        if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
            raise BrokenPipeError from None
        # Output to a pipe is buffered: a reader that left shows up only when it is flushed.
        sys.stdout.flush()
        raise


def _reader_left() -> NoReturn:
    """`segql members vip | head -1`: the reader closing the pipe early is normal use, so exit
    quietly with status 0. Output still buffered goes to /dev/null, not to an error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    sys.exit(0)
