"""BENCHMARKS.md and benchmarks.json from one run's results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.harness import Result, Scale

DASH = "—"


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    if unit == "AUC":
        return f"{value:.3f} {unit}"
    if unit in {"ms", "µs/event", "s", "MB"}:
        return f"{value:,.2f} {unit}"
    return f"{value:,.0f} {unit}"


def row(result: Result) -> list[str]:
    if result.error:
        segql = f"error: {result.error}"
    else:
        segql = figure(result.segql, result.unit) if result.segql is not None else result.note
    # Three significant digits: a ratio of 0.013 must not print as 0.01.
    ratio = f"{result.ratio:.3g}x" if result.ratio is not None else DASH
    met = {True: "yes", False: "**no**", None: DASH}[result.met]
    goal = result.goal.text if result.goal else DASH
    name = f"{result.scenario}: {result.case}"
    return [name, segql or DASH, figure(result.baseline, result.unit), ratio, goal, met]


def table(results: list[Result]) -> str:
    header = ["scenario", "segql", "baseline", "ratio", "goal", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row(r)) + " |" for r in results
    ]
    return "\n".join(lines)


def markdown(results: list[Result], run: dict[str, Any]) -> str:
    scale: Scale = run["scale"]
    machine, pg = run["machine"], run["postgres"]
    settings = ", ".join(f"{k} = {v}" for k, v in pg["settings"].items())
    return "\n".join(
        [
            "# segql benchmarks",
            "",
            f"Scale **{scale.name}**: {scale.events:,} events for {scale.users:,} users, "
            f"COPY batches of {scale.batch_size:,}, {scale.round_trips:,} latency round trips, "
            f"writers for {scale.writer_seconds:g} s each. Run at {run['started_at']}, "
            f"took {run['seconds']:.0f} s. Ratio is segql ÷ baseline; the baseline is measured "
            "in the same run on the same server.",
            "",
            table(results),
            "",
            "## Machine",
            "",
            f"- {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB",
            f"- {machine['platform']}, Python {machine['python']}",
            f"- segql commit {machine.get('commit', '?')}",
            f"- load average when the run started: {machine['load_average']}",
            "",
            "## PostgreSQL",
            "",
            f"- {pg['version']} ({pg['server']} server)",
            f"- {settings}",
            "",
            "Reproduce with `python -m benchmarks --scale " + scale.name + "`.",
            "",
        ]
    )


def write(out: Path, results: list[Result], run: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "BENCHMARKS.md", out / "benchmarks.json"
    md.write_text(markdown(results, run), encoding="utf-8")
    payload = {**run, "scale": vars(run["scale"]), "results": [r.to_json() for r in results]}
    js.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
