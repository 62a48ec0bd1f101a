"""The benchmark harness runs end to end at smoke scale, as CI and a developer would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from segql import db

REPO = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_both_reports(server_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in db.ENV_VARS}
    env["SEGQL_DATABASE_URL"] = server_url
    env["SEGQL_HOME"] = str(tmp_path / "segql-home")  # never a developer's embedded server
    out = tmp_path / "out"
    # Generous: the harness must fail when a scenario errors, never because a machine is slow.
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scale", "smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((out / "benchmarks.json").read_text(encoding="utf-8"))
    markdown = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert [r for r in report["results"] if r["error"]] == []
    scenarios = {r["scenario"] for r in report["results"]}
    assert {"ingest", "latency", "writers", "insert", "listen", "state"} <= scenarios
    measured = {"ingest", "writers", "insert", "listen", "state"}
    assert all(r["baseline"] for r in report["results"] if r["scenario"] in measured)
    assert all(r["segql"] for r in report["results"] if r["scenario"] in measured)
    (state,) = [r for r in report["results"] if r["scenario"] == "state"]
    assert {"members", "timers"} <= set(state["details"]["state_tables"])
    assert {"events", "changes", "segments"} <= set(state["details"]["not_counted"])
    assert report["postgres"]["settings"]["fsync"] in {"on", "off"}
    assert "| scenario | segql | baseline | ratio | goal | met? |" in markdown
