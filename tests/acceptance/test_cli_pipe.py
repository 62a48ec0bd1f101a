"""Output into a pipe whose reader leaves early, as `segql members vip | head -1` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg


def test_members_into_a_closed_pipe_exits_0_quietly(
    conn: psycopg.Connection, cli_env: dict[str, str], tmp_path: Path
) -> None:
    conn.execute(
        "INSERT INTO segql.events (user_id, name) "
        "SELECT 'user-' || lpad(i::text, 6, '0'), 'purchase' FROM generate_series(1, 20000) i"
    )
    conn.commit()
    (tmp_path / "vip.sql").write_text("CREATE SEGMENT vip AS did('purchase');\n")
    subprocess.run(
        [sys.executable, "-m", "segql", "deploy", str(tmp_path / "vip.sql")],
        env=cli_env,
        check=True,
        capture_output=True,
    )
    # A real pipe into `head -1`: far more output than the pipe holds, so the writer meets
    # the closed end.
    done = subprocess.run(
        f"set -o pipefail; {sys.executable} -m segql members vip | head -1",
        shell=True,
        executable="/bin/bash",
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("user-000001\t")
    assert done.stderr == ""
    assert done.returncode == 0
