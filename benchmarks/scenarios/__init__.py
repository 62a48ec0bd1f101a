"""The scenario registry: one module per scenario, each with `NAME` and `run(ctx) -> list[Result]`.

To add a scenario, write a module here and add one line to SCENARIOS. A scenario measures its
segql side and its baseline in the same run; a side it cannot measure yet is reported with a note
(skipped, not yet measured), never silently left out. An exception fails the whole run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.harness import Context, Result

SCENARIOS: list[str] = [
    "benchmarks.scenarios.ingest",
    "benchmarks.scenarios.latency",
    "benchmarks.scenarios.writers",
    "benchmarks.scenarios.maintenance",
    "benchmarks.scenarios.recompute",
    "benchmarks.scenarios.backfill",
    "benchmarks.scenarios.timers",
    "benchmarks.scenarios.campaigns",
    "benchmarks.scenarios.dashboard",
    "benchmarks.scenarios.rfm",
    "benchmarks.scenarios.breadth",
    "benchmarks.scenarios.geo",
    "benchmarks.scenarios.models",
    "benchmarks.scenarios.journeys",
    # Last: state and insert share a database kept until the run ends (benchmarks.loaded).
    "benchmarks.scenarios.listen",
    "benchmarks.scenarios.state",
    "benchmarks.scenarios.insert",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Context], list[Result]]


def load(only: set[str] | None = None) -> list[Scenario]:
    scenarios = []
    for module_name in SCENARIOS:
        module = importlib.import_module(module_name)
        if only is None or module.NAME in only:
            scenarios.append(Scenario(module.NAME, module.run))
    return scenarios


def names() -> list[str]:
    return [importlib.import_module(m).NAME for m in SCENARIOS]
