"""Every command and option explains itself."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from segql.cli import app


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(path, command) for the command and everything below it (typer ships its own click)."""
    found = [(" ".join(path) or "segql", command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found.extend(_walk(sub, (*path, name)))
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in _walk(typer.main.get_command(app)):
        if not (command.help or command.short_help):
            missing.append(path)
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden and not param.help:
                missing.append(f"{path} {param.opts[0]}")
    assert missing == []


def test_help_runs_for_every_command() -> None:
    runner = CliRunner()
    for path, _ in _walk(typer.main.get_command(app)):
        args = [] if path == "segql" else path.split()
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_flags_show_no_type_and_brackets_survive() -> None:
    shown = CliRunner().invoke(app, ["ingest", "--help"]).stdout
    assert "<bool>" not in shown
    assert "[default:" in shown and "FILE.rejects.jsonl]" in shown
