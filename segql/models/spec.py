"""What a segment definition needs to know of a model: its trained version, or that it has none.

A trained model is an intercept and weighted terms, each term an ordinary condition written as
definition text; the checker reads the terms the way it reads any definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Trained:
    version: int
    intercept: Decimal
    terms: tuple[tuple[Decimal, str], ...]  # (weight, condition text)

    @staticmethod
    def from_json(version: int, spec: Mapping[str, Any]) -> Trained:
        return Trained(
            version,
            Decimal(str(spec["intercept"])),
            tuple((Decimal(str(t["weight"])), str(t["condition"])) for t in spec["terms"]),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "intercept": str(self.intercept),
            "terms": [{"weight": str(w), "condition": c} for w, c in self.terms],
        }


# Model name -> its live trained version, or None while it has not been trained.
Models = Mapping[str, Trained | None]
