"""Zones as a user runs them: deploy, list --zones, why, a changed zone, drop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import psycopg

Cli = Callable[..., CompletedProcess[str]]

ZONES = """
CREATE ZONE delivery_area AS POLYGON ((-74.02 40.70, -73.93 40.70, -73.93 40.80, -74.02 40.80));
"""
SEGMENTS = """
CREATE SEGMENT in_delivery_area AS in_zone('delivery_area');
CREATE SEGMENT near_flagship AS distance_km(40.7580, -73.9855) <= 2;
"""


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_zones_from_deploy_to_drop(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    zones, segments = tmp_path / "zones.sql", tmp_path / "geo.sql"
    zones.write_text(ZONES)
    segments.write_text(SEGMENTS)
    ok(segql_cli("clock", "set", "2026-03-01T12:05:00Z"))
    out = ok(segql_cli("deploy", str(zones), str(segments)))
    assert "created: in_delivery_area, near_flagship" in out
    assert "zones created: delivery_area" in out
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT segql.track('u42', 'app_open', '{\"lat\": 40.7527, \"lon\": -73.9772}', "
            "'2026-03-01T12:00:00Z')"
        )
    assert ok(segql_cli("members", "in_delivery_area")).startswith("u42\t")
    assert ok(segql_cli("members", "near_flagship")).startswith("u42\t")
    why = ok(segql_cli("why", "in_delivery_area", "u42"))
    assert "[yes] in_zone('delivery_area')" in why
    assert "last known location (lat, lon) = '40.7527, -73.9772 (event " in why
    listed = json.loads(ok(segql_cli("list", "--zones", "--json")))
    assert [(z["name"], z["segments"]) for z in listed] == [("delivery_area", ["in_delivery_area"])]

    # A smaller area no longer holds u42: the segment reading it is re-evaluated at deploy.
    zones.write_text(ZONES.replace("40.80", "40.75"))
    compiled = ok(segql_cli("compile", str(zones)))
    assert "-- zone delivery_area\n-- stored in segql.zones: CREATE ZONE" in compiled
    assert "-- segment in_delivery_area v2" in compiled
    out = ok(segql_cli("deploy", str(zones)))
    assert "changed: in_delivery_area" in out and "zones changed: delivery_area" in out
    assert ok(segql_cli("members", "in_delivery_area")) == ""

    refused = segql_cli("drop", "delivery_area")
    assert refused.returncode == 1 and "in_zone()" in refused.stderr
    assert "dropped: in_delivery_area, delivery_area" in ok(
        segql_cli("drop", "delivery_area", "--cascade")
    )
    assert "No zones deployed" in ok(segql_cli("list", "--zones"))
