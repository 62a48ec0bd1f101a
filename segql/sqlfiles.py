"""Files that ship with segql: named SQL blocks, templates, migrations, examples.

The top-level folders `sql/`, `migrations/` and `examples/` are the subpackages `segql.sql`,
`segql.migrations` and `segql.examples`: mapped in by the wheel, and by `segql/__init__.py` when
running from a source checkout. Always reach them through these names, never through paths
relative to a module file.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_NAME_LINE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


def resource_dir(name: str) -> Traversable:
    """The shipped folder `name` ("sql", "migrations", "examples")."""
    return resources.files(f"segql.{name}")


def resource_path(name: str) -> Path:
    """Like `resource_dir` but as a real filesystem path (alembic and Jinja loaders need one)."""
    found = resource_dir(name)
    if not isinstance(found, Path):
        raise RuntimeError(f"segql.{name} is not installed as plain files")
    return found


def parse_named_blocks(text: str) -> dict[str, str]:
    """Split `-- name: foo` sections into {"foo": "<sql>"}; text before the first is ignored."""
    blocks: dict[str, str] = {}
    matches = list(_NAME_LINE.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"duplicate query name {name!r}")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@cache
def queries(filename: str = "queries.sql") -> dict[str, str]:
    """Named blocks of a shipped SQL file, read once per process."""
    text = resource_dir("sql").joinpath(filename).read_text(encoding="utf-8")
    return parse_named_blocks(text)


def query(name: str, filename: str = "queries.sql") -> str:
    """One named block; a KeyError names the block and the file."""
    blocks = queries(filename)
    try:
        return blocks[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in sql/{filename}") from None
