"""COPY throughput with 10 segments that read locations, as a ratio to raw COPY.

The segments mix what the geo vocabulary compiles to: distance_km and in_zone on the last known
location (one state row per user, updated by every batch's located events), and in_zone and
distance_km inside FILTERs of windowed aggregates (each event's own location). The synthetic
shop's app opens carry locations around its cities, and profiles carry a fallback. Every side
starts from a fresh database with the same profiles and replays the same COPY batches.
"""

from __future__ import annotations

from benchmarks import data, segments
from benchmarks.harness import Context, Result

NAME = "geo"

ZONES = """
CREATE ZONE bench_nyc AS POLYGON ((-74.02 40.70, -73.97 40.70, -73.93 40.795, -73.95 40.81,
                                   -74.015 40.755));
CREATE ZONE bench_london AS POLYGON ((-0.20 51.48, -0.05 51.48, -0.05 51.54, -0.20 51.54));
CREATE ZONE bench_paris AS POLYGON ((2.25 48.82, 2.42 48.82, 2.42 48.90, 2.25 48.90));
CREATE ZONE bench_store_nyc AS CIRCLE (40.7233, -74.0030, 1.5);
CREATE ZONE bench_store_london AS CIRCLE (51.5154, -0.1419, 1);
"""

CONDITIONS = (
    "distance_km(40.7233, -74.0030) <= 2",
    "in_zone('bench_nyc')",
    "did('app_open', within => '7 days') FILTER (WHERE in_zone('bench_store_london'))",
    "distance_km(51.5074, -0.1278) < 5 AND plan = 'premium'",
    "in_zone('bench_paris')",
    "in_zone('bench_store_nyc')",
    "event_count('*', within => '30 days') FILTER (WHERE distance_km(48.8566, 2.3522) < 10) >= 2",
    "distance_km(35.6762, 139.6503) <= 20",
    "in_zone('bench_london') AND did('add_to_cart', within => '24 hours')",
    "NOT in_zone('bench_nyc') AND distance_km(40.7128, -74.0060) < 50",
)


def definitions() -> str:
    body = "\n".join(f"CREATE SEGMENT bench_geo_{i:02d} AS {c};" for i, c in enumerate(CONDITIONS))
    return ZONES + body + "\n"


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    raw = data.copy_rate(ctx, batches, "geo_raw", None)
    ctx.log(f"raw COPY: {raw:,.0f} rows/s")
    skipped = segments.availability()
    result = Result(
        NAME,
        f"COPY {batches.events:,} events, {len(CONDITIONS)} geo segments",
        "rows/s",
        baseline=raw,
        note=skipped or "",
        details={"batch_size": ctx.scale.batch_size, "segments": list(CONDITIONS)},
    )
    if not skipped:
        result.segql = data.copy_rate(ctx, batches, "geo_segments", definitions())
        ctx.log(f"COPY with {len(CONDITIONS)} geo segments: {result.segql:,.0f} rows/s")
    return [result]
