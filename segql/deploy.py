"""Deploy: one transaction that swaps in a new program and brings membership up to date.

Writers to events and profiles wait while a deploy runs (SHARE ROW EXCLUSIVE), so the backfill
and the new triggers see the same data and no event is evaluated by neither program.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg import sql

from segql import generate, grants, ir, unseen, zones
from segql.campaigns import deploy as campaigns
from segql.check import check, check_all
from segql.errors import SegqlError
from segql.features import rfm
from segql.models import store as models
from segql.models.check import is_model
from segql.models.parse import ModelDialect
from segql.parse import CreateTiers, Statement, parse_file, parse_text
from segql.plan import FeatureKey, Plan, SegmentPlan, plan
from segql.sqlfiles import query

Progress = Callable[[str, int, int], None]  # (segment, users done, users total)
BACKFILL_CHUNK = 5000


class DeployError(SegqlError):
    """The deploy cannot go ahead."""


@dataclass
class Step:
    label: str
    sql: str


@dataclass
class DeployResult:
    deploy_id: int | None
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Unchanged definitions whose function is created again: this release compiles it
    # differently (it reads state that moved, or an earlier release made it) or it is missing.
    recompiled: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # never-seen names, see segql.unseen
    campaigns: campaigns.CampaignResult = field(default_factory=campaigns.CampaignResult)
    zones: zones.ZoneChanges = field(default_factory=zones.ZoneChanges)
    models: models.ModelResult = field(default_factory=models.ModelResult)

    @property
    def script(self) -> str:
        steps = [*self.steps, *(Step(label, sql) for label, sql in self.campaigns.steps)]
        return "\n".join(f"-- {s.label}\n{s.sql.strip()}\n" for s in steps)

    @property
    def nothing_to_do(self) -> bool:
        segments_unchanged = not (self.created or self.changed or self.dropped or self.recompiled)
        models_unchanged = not (self.models.created or self.models.changed or self.models.dropped)
        return (
            segments_unchanged
            and models_unchanged
            and self.campaigns.nothing_to_do
            and self.zones.nothing_to_do
        )


@dataclass
class Deployed:
    name: str
    version: int
    definition: str
    segment: ir.Segment


def load_files(paths: Iterable[str | Path]) -> list[Statement]:
    statements: list[Statement] = []
    for path in paths:
        statements.extend(parse_file(path, ModelDialect))
    return statements


def deployed(conn: psycopg.Connection) -> dict[str, Deployed]:
    """The segments in the catalog, re-checked from their stored definitions."""
    rows = conn.execute(
        "SELECT name, version, definition FROM segql.segments ORDER BY name"
    ).fetchall()
    statements = [parse_text(r[2] + ";", f"<deployed {r[0]}>")[0] for r in rows]
    # Each segment as it was compiled: with the model versions it read when it was deployed.
    # The tiers of one CREATE TIERS share its text, which defines them all: pick the tier.
    live, compiled_with = models.load(conn), models.compiled_with(conn)
    deployed_zones = zones.deployed(conn)
    names = [r[0] for r in rows]
    segments = [
        next(
            s
            for s in check([stmt], names, {**live, **compiled_with.get(r[0], {})}, deployed_zones)
            if s.name == r[0]
        )
        for r, stmt in zip(rows, statements, strict=True)
    ]
    return {r[0]: Deployed(r[0], r[1], r[2], s) for r, s in zip(rows, segments, strict=True)}


def deploy(
    conn: psycopg.Connection,
    statements: list[Statement],
    *,
    prune: bool = False,
    drop: Iterable[str] = (),
    cascade: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    cause: str = "redeploy",
) -> DeployResult:
    """Deploy the given definitions beside (or, with prune, instead of) the deployed ones.

    `drop` names deployed segments (or campaigns) to remove; with `cascade`, the segments that
    read them through in_segment() go too, else such a reader makes the deploy refuse.
    Models deploy first, in the same transaction, so that segments may read them with score();
    campaigns deploy after the segments they read. Changed segments log their differences with
    `cause` (a retrained model redeploys the segments that read it with cause 'model').
    """
    model_statements = [s for s in statements if is_model(s)]
    statements = [s for s in statements if not is_model(s)]
    segment_statements, campaign_statements = campaigns.split(statements)
    with conn.transaction():
        grants.act_as_owner(conn)
        conn.execute("LOCK TABLE segql.events, segql.profiles IN SHARE ROW EXCLUSIVE MODE")
        # The tick locks users and then timers; holding timers from the start means a deploy
        # waits for a running tick instead of deadlocking with it.
        conn.execute("LOCK TABLE segql.timers IN EXCLUSIVE MODE")
        conn.execute(query("deploy_instant"))
        model_result = models.deploy_models(conn, model_statements)
        campaign_names = campaigns.deployed_names(conn)
        zone_names = set(zones.deployed(conn))
        drop_set = set(drop)
        current = deployed(conn)
        zone_drops = drop_set & zone_names
        model_drops = drop_set & models.names(conn)
        wanted = _whole_tiers(current, drop_set - campaign_names - zone_names - model_drops)
        segment_drops = _with_dependants(current, wanted, cascade, zone_drops, model_drops)
        # Before compiling: a definition in this deploy that reads a dropped model is refused
        # by the checker like any unknown model.
        model_result.dropped = models.drop_models(conn, model_drops)
        result = _deploy(
            conn,
            segment_statements,
            prune,
            segment_drops,
            dry_run,
            progress,
            cause,
            zone_drops=zone_drops,
        )
        result.models = model_result
        segments_after = {*result.created, *result.changed, *result.unchanged}
        result.campaigns = campaigns.deploy_campaigns(
            conn, campaign_statements, segments_after, prune=prune, drop=drop_set & campaign_names
        )
        if dry_run:
            raise _Rollback(result)
    return result


def _whole_tiers(current: dict[str, Deployed], drop: set[str]) -> set[str]:
    """The segments to drop for `drop`: a tier group's name stands for all its tiers, and a
    tier alone cannot go, since its group's definition would still define it."""
    groups: dict[str, set[str]] = {}
    for d in current.values():
        if d.segment.tiers is not None:
            groups.setdefault(d.segment.tiers, set()).add(d.name)
    out = set()
    for name in drop:
        out |= groups[name] if name not in current and name in groups else {name}
    for group, tiers in sorted(groups.items()):
        partial = sorted(out & tiers)
        if partial and not tiers <= out:
            raise DeployError(
                f"{', '.join(partial)} {'is a tier' if len(partial) == 1 else 'are tiers'} of "
                f"{group}: drop the whole group (segql drop {group}), or deploy CREATE TIERS "
                f"{group} without {'it' if len(partial) == 1 else 'them'}"
            )
    return out


def _with_dependants(
    current: dict[str, Deployed],
    drop: set[str],
    cascade: bool,
    zone_drops: set[str] | None = None,
    model_drops: set[str] | None = None,
) -> set[str]:
    """The segments to drop: `drop`, and with `cascade` every segment reading one of them (or
    one of the dropped zones or models)."""
    for name in sorted(drop):
        if name not in current:
            raise DeployError(f"segment '{name}' is not deployed.{_deployed_hint(current, name)}")
    wanted = set(drop)
    reads: list[tuple[set[str], Callable[[ir.Segment], tuple[str, ...]], str]] = [
        (set(zone_drops or ()), lambda seg: seg.zones, "in_zone()"),
        (set(model_drops or ()), lambda seg: seg.models, "score()"),
    ]
    for gone, read, how in reads:
        found = {
            d.name for d in current.values() if d.name not in wanted and set(read(d.segment)) & gone
        }
        if found and not cascade:
            _refuse_drop(sorted(gone), sorted(found), how)
        wanted |= found
    while True:
        readers = {
            d.name
            for d in current.values()
            if d.name not in wanted and set(d.segment.depends_on) & wanted
        }
        if not readers:
            return wanted
        if not cascade:
            _refuse_drop(sorted(drop), sorted(readers))
        wanted |= readers


def _refuse_drop(drop: list[str], readers: list[str], how: str = "in_segment()") -> NoReturn:
    one = len(readers) == 1
    them = "it" if one else "them"
    raise DeployError(
        f"cannot drop {', '.join(drop)}: {', '.join(readers)} read{'s' if one else ''} it with "
        f"{how}. Drop {them} first (segql drop {' '.join(readers + drop)}), or pass "
        f"--cascade to drop {them} too"
    )


def _deployed_hint(current: Iterable[str], name: str) -> str:
    known = sorted(current)
    if not known:
        return " Nothing is deployed yet."
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" Did you mean '{close[0]}'? (see `segql list`)"
    return f" Deployed: {', '.join(known)}."


class _Rollback(Exception):
    def __init__(self, result: DeployResult) -> None:
        self.result = result


def compile_sql(
    conn: psycopg.Connection, statements: list[Statement], prune: bool = False
) -> DeployResult:
    """What deploy would run, without changing anything."""
    try:
        deploy(conn, statements, prune=prune, dry_run=True)
    except _Rollback as done:
        return done.result
    raise AssertionError("dry run did not roll back")


def _deploy(
    conn: psycopg.Connection,
    statements: list[Statement],
    prune: bool,
    drop: set[str],
    dry_run: bool,
    progress: Progress | None,
    changed_cause: str = "redeploy",
    zone_drops: set[str] | None = None,
) -> DeployResult:
    current = deployed(conn)
    current_zones = zones.deployed(conn)
    file_names = {n for s in statements if not zones.is_zone(s) for n in names_of(s)}
    file_tiers = {_tiers_of(s) for s in statements} - {None}
    # A tier group is replaced whole: tiers it no longer lists are dropped with it.
    kept_texts = {
        d.definition: d.name
        for d in current.values()
        if d.name not in file_names
        and d.name not in drop
        and d.segment.tiers not in file_tiers
        and not prune
    }
    kept = [parse_text(text + ";", f"<deployed {name}>")[0] for text, name in kept_texts.items()]
    # Deployed zones stay unless dropped; with --prune the files are the whole definition.
    kept_zones = (
        {} if prune else {n: z for n, z in current_zones.items() if n not in (zone_drops or ())}
    )
    segments, defined_zones = check_all(
        [*statements, *kept], models=models.load(conn), zones=kept_zones
    )
    wanted = {s.name for s in segments}
    for seg in segments:
        missing = set(seg.depends_on) - wanted
        if missing:
            raise DeployError(
                f"segment '{seg.name}' reads in_segment('{sorted(missing)[0]}'), "
                "which would be dropped; drop or change it first"
            )

    result = DeployResult(None)
    defined = {z.name for z in defined_zones}
    gone = set(zone_drops or ()) | (set(current_zones) - defined if prune else set())
    result.zones = zones.changes(current_zones, defined_zones, gone)
    if not dry_run:
        zones.record(conn, defined_zones, result.zones)
    for zone in defined_zones:
        if zone.name in result.zones.created or zone.name in result.zones.changed:
            # Stored with bind parameters; segments that read it compile its geometry below.
            text = " ".join(zone.text.split())
            result.steps.append(Step(f"zone {zone.name}", f"-- stored in segql.zones: {text}"))
    for name in result.zones.dropped:
        result.steps.append(Step(f"drop zone {name}", "-- removed from segql.zones"))
    result.warnings = unseen.warnings(conn, [s for s in segments if s.name in file_names])
    result.dropped = sorted(set(current) - wanted)
    versions: dict[str, int] = {}
    last_versions: dict[str, int] = dict(
        conn.execute(
            "SELECT name, max(version) FROM segql.segment_versions GROUP BY name"
        ).fetchall()
    )
    for seg in segments:
        old = current.get(seg.name)
        if old is not None and old.segment.fingerprint == seg.fingerprint:
            versions[seg.name] = old.version
            result.unchanged.append(seg.name)
        else:
            versions[seg.name] = int(last_versions.get(seg.name, 0)) + 1
            (result.changed if old is not None else result.created).append(seg.name)
    the_plan = plan(segments, versions)
    for s in the_plan.segments:
        row = conn.execute(generate.empty_member_sql(s, the_plan.empty_member).encode()).fetchone()
        the_plan.empty_member[s.name] = bool(row and row[0])
        the_plan.empty_timed[s.name] = bool(row and row[1])
    new_keys = _assign_feature_ids(conn, the_plan, dry_run)
    compiled = {s.name: generate.segment_sql(the_plan, s) for s in the_plan.segments}
    fresh = set(result.created) | set(result.changed)
    kept_segments = [s for s in the_plan.segments if s.name not in fresh]
    stale = _missing_functions(conn, kept_segments) | _recompiled(conn, kept_segments, compiled)
    result.recompiled = sorted(stale)
    if result.nothing_to_do and not new_keys:
        return result
    if dry_run:
        # A sequence does not roll back: compile shows the number deploy would take instead.
        deploy_id = _next_id(conn, "segql.deploys")
    else:
        deploy_id = conn.execute(
            "INSERT INTO segql.deploys (segments, created, changed, dropped, program) "
            "VALUES (%s, %s, %s, %s, '') RETURNING id",
            [sorted(wanted), result.created, result.changed, result.dropped],
        ).fetchone()[0]  # type: ignore[index]
    result.deploy_id = deploy_id

    # A recompiled segment is evaluated again too: a deployment made before this check may have
    # run the stale function, and where it did not, the evaluation logs nothing.
    refresh = the_plan.dependents(fresh | stale)
    steps = result.steps
    for s in the_plan.segments:
        if s.name in fresh or s.name in stale:
            steps.append(Step(f"segment {s.name} v{s.version}", compiled[s.name].create))
    if the_plan.segments:
        steps.append(Step(f"program {deploy_id}", generate.program_sql(the_plan, deploy_id)))
    else:
        steps.append(Step("no segments: remove the program", _remove_program_sql()))
    for s in the_plan.segments:
        steps.append(Step(f"view segments.{s.name}", generate.view_sql(s)))
    for name in result.dropped:
        steps.append(Step(f"drop segment {name}", _drop_segment_sql(name, current[name].version)))
    if new_keys:
        steps.append(
            Step("backfill new shared features", generate.feature_backfill_sql(the_plan, new_keys))
        )
    steps += _score_steps(conn, the_plan)
    keys_now: dict[str, str | None] = dict(
        conn.execute("SELECT name, timer_key FROM segql.segments").fetchall()
    )
    stale_groups = [
        g
        for g in the_plan.groups
        if any(s.name in fresh or keys_now.get(s.name) != g.key for s in g.members)
    ]
    for g in stale_groups:
        steps.append(Step(f"memberships of group {g.key}", generate.group_sync_sql(g)))
    if stale_groups or result.dropped:
        steps.append(Step("forget removed groups", generate.groups_cleanup_sql(the_plan)))
    if the_plan.segments and _needs_user_sync(conn):
        steps.append(Step("sync the user list", _user_sync_sql()))
    steps.append(Step("drop superseded functions", _drop_old_functions_sql(deploy_id, the_plan)))
    steps.append(Step("functions run for segql's owner only", grants.revoke_public_execute_sql()))

    for step in steps:
        if not dry_run:
            conn.execute(step.sql.encode())
    for s in the_plan.segments:
        if s.name in refresh:
            cause = "deploy" if s.name in result.created else changed_cause
            call = _backfill_call(the_plan, deploy_id, s, cause)
            shown = call.as_string(conn).replace("%s", f"<every user, {BACKFILL_CHUNK} at a time>")
            steps.append(Step(f"backfill {s.name}", shown + ";"))
            if not dry_run:
                _backfill(conn, s.name, call, progress)
    if not dry_run:
        _record(conn, the_plan, compiled, deploy_id, result, stale)
    return result


def _score_steps(conn: psycopg.Connection, the_plan: Plan) -> list[Step]:
    """The catalog rows of the RFM scores the segments read, cutpoints computed now for scores
    that have none yet (the others keep theirs until `segql refresh`), and scores no segment
    reads any more forgotten."""
    scores: dict[str, ir.Rfm] = {}
    for s in the_plan.segments:
        scores.update(rfm.scores(s.segment.condition))
    existing = {r[0] for r in conn.execute("SELECT score FROM segql.rfm_cutpoints")}
    steps = []
    if scores:
        rows = "".join(generate.score_row_sql(scores[k]) for k in sorted(scores))
        steps.append(Step("RFM scores", rows))
    new = [scores[k] for k in sorted(set(scores) - existing)]
    if new:
        computed = "".join(generate.cutpoints_sql(s) for s in new)
        steps.append(Step("cutpoints of new RFM scores", computed))
    gone = sorted(existing - set(scores))
    if gone:
        names = ", ".join(generate.quote_literal(k) for k in gone)
        steps.append(
            Step(
                "forget RFM scores no segment reads",
                f"DELETE FROM segql.rfm_cutpoints WHERE score IN ({names});\n",
            )
        )
    return steps


def _missing_functions(conn: psycopg.Connection, segments: list[SegmentPlan]) -> set[str]:
    """Unchanged segments whose function is not there with the signature this release calls,
    e.g. created by an earlier release: they are created again, or the program could not call
    them."""
    signatures = {
        s.name: f"segql.{generate.quote_ident(generate.function_name(s.name, s.version))}"
        f"{generate.SEGMENT_ARGS}"
        for s in segments
    }
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[], %s::text[]) AS x(name, signature) "
        "WHERE to_regprocedure(signature) IS NULL",
        [list(signatures), list(signatures.values())],
    )
    return {r[0] for r in rows}


def _recompiled(
    conn: psycopg.Connection,
    segments: list[SegmentPlan],
    compiled: dict[str, generate.SegmentSQL],
) -> set[str]:
    """Unchanged segments whose function compiles differently now: a redeploy of another
    segment can change what they read without changing their definition (a shared feature's
    state moves to a new id when a reader no longer needs its k newest timestamps). Kept as it
    was, such a function would read state nothing maintains any more."""
    rows = conn.execute(
        "SELECT v.name, v.compiled FROM segql.segment_versions v "
        "JOIN unnest(%s::text[], %s::int[]) AS x(name, version) USING (name, version)",
        [[s.name for s in segments], [s.version for s in segments]],
    )
    return {name for name, text in rows if text != compiled[name].create}


def pruned_by(conn: psycopg.Connection, statements: list[Statement]) -> list[str]:
    """The deployed segments that `deploy --prune` of these statements would drop."""
    names = {n for s in statements for n in names_of(s)}
    rows = conn.execute("SELECT name FROM segql.segments ORDER BY name").fetchall()
    conn.rollback()
    return [r[0] for r in rows if r[0] not in names]


def names_of(stmt: Statement) -> list[str]:
    """The segments a statement defines: its name, or the names of its tiers."""
    if isinstance(stmt.tree, CreateTiers):
        return [str(t.this.this).lower() for t in stmt.tree.expressions]
    this = stmt.tree.args.get("this")
    return [str(getattr(this, "this", "")).lower()]


def _tiers_of(stmt: Statement) -> str | None:
    if not isinstance(stmt.tree, CreateTiers):
        return None
    return str(stmt.tree.this.this).lower()


def _next_id(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(query("next_id"), {"table": table}).fetchone()
    assert row is not None
    return int(row[0])


def _assign_feature_ids(
    conn: psycopg.Connection, the_plan: Plan, dry_run: bool = False
) -> list[FeatureKey]:
    """Give each state feature a stable id; forget features no segment reads any more."""
    existing: dict[str, int] = dict(conn.execute("SELECT key, id FROM segql.features").fetchall())
    keys = the_plan.state_keys
    new_keys: list[FeatureKey] = []
    preview = _next_id(conn, "segql.features") if dry_run else 0
    for key in keys:
        if key.text in existing:
            the_plan.feature_ids[key] = existing[key.text]
        elif dry_run:
            the_plan.feature_ids[key] = preview
            preview += 1
            new_keys.append(key)
        else:
            row = conn.execute(
                "INSERT INTO segql.features (key, spec) VALUES (%s, %s) RETURNING id",
                [key.text, json.dumps(key.spec)],
            ).fetchone()
            assert row is not None
            the_plan.feature_ids[key] = row[0]
            new_keys.append(key)
    unused = [fid for text, fid in existing.items() if text not in {k.text for k in keys}]
    if unused:
        conn.execute("DELETE FROM segql.feature_state WHERE feature_id = ANY(%s)", [unused])
        conn.execute("DELETE FROM segql.features WHERE id = ANY(%s)", [unused])
    return new_keys


def _user_sync_sql() -> str:
    return f"{query('forget_unseen_users')}\n{query('add_seen_users')}\n"


def _needs_user_sync(conn: psycopg.Connection) -> bool:
    """Without a program nothing maintains segql.users, so resync it when one starts."""
    row = conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'segql.events'::regclass "
        "AND tgname = 'segql_events_ins'"
    ).fetchone()
    return row is None or row[0] == 0


def _remove_program_sql() -> str:
    out = []
    for table in ("events", "profiles"):
        for op in ("ins", "upd", "del"):
            out.append(f"DROP TRIGGER IF EXISTS segql_{table}_{op} ON segql.{table};")
    out.append(
        "CREATE OR REPLACE FUNCTION segql.tick(p_limit integer DEFAULT 100000) "
        "RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;"
    )
    return "\n".join(out)


def _drop_segment_sql(name: str, version: int) -> str:
    lit = generate.quote_literal(name)
    return f"""
WITH gone AS (DELETE FROM segql.members WHERE segment = {lit} RETURNING user_id),
logged AS (
    INSERT INTO segql.changes (segment, user_id, kind, at, cause, version)
    SELECT {lit}, user_id, 'exit', segql.now(), 'drop', {version} FROM gone
    RETURNING 1
)
SELECT segql.ring(ARRAY[{lit}]) WHERE EXISTS (SELECT 1 FROM logged);
DELETE FROM segql.timers WHERE segment = {lit};
UPDATE segql.user_groups SET segments = array_remove(segments, {lit}) WHERE {lit} = ANY(segments);
DELETE FROM segql.user_groups WHERE cardinality(segments) = 0;
DELETE FROM segql.segments WHERE name = {lit};
DROP VIEW IF EXISTS segments.{generate.quote_ident(name)};
"""


def _drop_old_functions_sql(deploy_id: int, the_plan: Plan) -> str:
    keep = [generate.function_name(s.name, s.version) for s in the_plan.segments]
    keep_lit = "ARRAY[" + ", ".join(generate.quote_literal(k) for k in keep) + "]::text[]"
    prefix = generate.quote_literal(f"p{deploy_id}_")
    return f"""
DO $segql$
DECLARE r record;
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'segql'
               AND ((p.proname ~ '^p[0-9]+_' AND left(p.proname, length({prefix})) <> {prefix})
                    OR (p.proname ~ '^s_.*_v[0-9]+$' AND NOT p.proname = ANY({keep_lit})))
    LOOP
        EXECUTE format('DROP FUNCTION %s', r.fn);
    END LOOP;
END
$segql$;
"""


def _backfill_call(the_plan: Plan, deploy_id: int, seg: SegmentPlan, cause: str) -> sql.Composed:
    """The call that evaluates one segment for a chunk of users (bound as the parameter).

    A grouped segment is evaluated by its group's function, limited to that segment's changes,
    so the group's shared timer takes the new member into account.
    """
    group = the_plan.group_of(seg.name)
    if group is None:
        fn = sql.Identifier("segql", generate.function_name(seg.name, seg.version))
        return sql.SQL("SELECT {}(%s::text[], {})").format(fn, sql.Literal(cause))
    number = the_plan.groups.index(group) + 1
    fn = sql.Identifier("segql", generate.group_function_name(deploy_id, number))
    return sql.SQL("SELECT count(*) FROM {}(%s::text[], {}, NULL, NULL, {})").format(
        fn, sql.Literal(cause), sql.Literal([seg.name])
    )


def _backfill(
    conn: psycopg.Connection, name: str, call: sql.Composed, progress: Progress | None
) -> None:
    users = [r[0] for r in conn.execute("SELECT user_id FROM segql.users ORDER BY user_id")]
    if progress:
        progress(name, 0, len(users))
    for start in range(0, len(users), BACKFILL_CHUNK):
        chunk = users[start : start + BACKFILL_CHUNK]
        conn.execute(call, [chunk])
        if progress:
            progress(name, start + len(chunk), len(users))


def _record(
    conn: psycopg.Connection,
    the_plan: Plan,
    compiled: dict[str, generate.SegmentSQL],
    deploy_id: int,
    result: DeployResult,
    recreated: set[str],
) -> None:
    fresh = set(result.created) | set(result.changed)
    for s in the_plan.segments:
        seg = s.segment
        conn.execute(
            """INSERT INTO segql.segments
                   (name, version, definition, comment, source, depends_on, full_query,
                    timer_key, tiers, tier_rank, deployed_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                   definition = excluded.definition, comment = excluded.comment,
                   source = excluded.source, depends_on = excluded.depends_on,
                   full_query = excluded.full_query, timer_key = excluded.timer_key,
                   tiers = excluded.tiers, tier_rank = excluded.tier_rank,
                   deployed_at = CASE WHEN segql.segments.version = excluded.version
                                      THEN segql.segments.deployed_at ELSE now() END""",
            [
                seg.name,
                s.version,
                seg.text,
                seg.comment,
                seg.source,
                list(seg.depends_on),
                compiled[s.name].full_query,
                the_plan.timer_key(s.name) if the_plan.group_of(s.name) else None,
                seg.tiers,
                seg.tier_rank or None,
            ],
        )
        if s.name in fresh:
            conn.execute(
                "INSERT INTO segql.segment_versions (name, version, definition, comment, compiled) "
                "VALUES (%s, %s, %s, %s, %s)",
                [seg.name, s.version, seg.text, seg.comment, compiled[s.name].create],
            )
        elif s.name in recreated:
            # The same version, compiled against the state it reads now.
            conn.execute(
                "UPDATE segql.segment_versions SET compiled = %s WHERE name = %s AND version = %s",
                [compiled[s.name].create, seg.name, s.version],
            )
    models.record_readers(conn, [s.segment for s in the_plan.segments])
    conn.execute("UPDATE segql.deploys SET program = %s WHERE id = %s", [result.script, deploy_id])


# -- reading -----------------------------------------------------------------------------------


@dataclass
class SegmentInfo:
    name: str
    version: int
    size: int
    deployed_at: datetime
    comment: str | None
    definition: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "deployed_at": self.deployed_at.isoformat(),
            "comment": self.comment,
            "definition": self.definition,
        }


def list_segments(conn: psycopg.Connection) -> list[SegmentInfo]:
    rows = conn.execute(
        """SELECT s.name, s.version,
                  (SELECT count(*) FROM segql.members m WHERE m.segment = s.name),
                  s.deployed_at, s.comment, s.definition
           FROM segql.segments s ORDER BY s.name"""
    ).fetchall()
    return [SegmentInfo(*r) for r in rows]


def list_zones(conn: psycopg.Connection) -> list[zones.ZoneInfo]:
    return zones.list_zones(conn, [d.segment for d in deployed(conn).values()])


def members(conn: psycopg.Connection, name: str) -> list[tuple[str, datetime]]:
    require_segment(conn, name)
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT user_id, since FROM segql.members WHERE segment = %s ORDER BY user_id", [name]
        )
    ]


def full_members(conn: psycopg.Connection, name: str) -> set[str]:
    """Membership by the full-recompute query: what incremental membership must equal."""
    row = conn.execute("SELECT full_query FROM segql.segments WHERE name = %s", [name]).fetchone()
    if row is None:
        raise DeployError(f"segment '{name}' is not deployed (see `segql list`)")
    return {r[0] for r in conn.execute(row[0].encode())}


def require_segment(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("SELECT 1 FROM segql.segments WHERE name = %s", [name]).fetchone() is None:
        known = [r[0] for r in conn.execute("SELECT name FROM segql.segments ORDER BY name")]
        raise DeployError(f"segment '{name}' is not deployed.{_deployed_hint(known, name)}")
