"""segql: real-time customer segmentation inside PostgreSQL."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# The wheel ships the top-level folders sql/, migrations/ and examples/ as the subpackages
# segql.sql, segql.migrations and segql.examples. When segql runs straight from a source checkout
# (`python -m segql` in the repository), make the same names resolve to those folders.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "sql" / "__init__.py").is_file():
    __path__.append(str(_checkout))

from segql.feed import Change, subscribe  # noqa: E402 - after __path__ is complete

__all__ = ["Change", "__version__", "subscribe"]
