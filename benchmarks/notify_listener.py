"""The `listen` scenario's baseline listener: print each notification's payload on its own line.

`python -m benchmarks.notify_listener CHANNEL`, the server from $SEGQL_DATABASE_URL. Like
`segql listen`, it owns one autocommit connection that runs nothing but LISTEN, and flushes every
line at once; it runs until it is terminated.
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m benchmarks.notify_listener CHANNEL", file=sys.stderr)
        return 2
    with psycopg.connect(os.environ["SEGQL_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(argv[0])))
        for notify in conn.notifies():
            sys.stdout.write(notify.payload + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
