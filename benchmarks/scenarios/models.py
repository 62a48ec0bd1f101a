"""Predictive scores: `segql train` time, and the holdout AUC of `buy_90d` against BG/NBD and
against recency alone, on the same users and the same labels in the same run.

The data is a synthetic shop whose customers join, churn and buy at latent rates
(`segql.synth.Lifecycle`), from a seed no model was tuned on. The holdout is the users with an
event at clock - 90 days, labelled by whether they purchased in the 90 days up to the clock.
segql's figure is the model `segql train` fits without the holdout; BG/NBD is fitted by
maximum likelihood on the same users' purchase histories before the holdout cutoff (birth = the
first event of any kind), and ranks them by P(purchase in 90 days); recency alone ranks them by
how recently they purchased (never: last). For the choice of model family, the details also
give gradient-boosted trees fitted on the same 0/1 terms.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from benchmarks.harness import Context, Goal, Result
from segql import deploy, synth
from segql import run as segql_run
from segql.models.parse import ModelDialect
from segql.parse import parse_text

NAME = "models"
END = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 365
HORIZON = timedelta(days=90)
SEED_OFFSET = 1000  # a seed the model was never developed on
# (users, events) per scale: training reads every cutoff's full history, so it stays modest.
SIZES = {"smoke": (1_500, 30_000), "small": (10_000, 200_000), "full": (50_000, 1_000_000)}
DEFINITIONS = """
CREATE MODEL buy_90d COMMENT 'Will purchase in the next 90 days'
  PREDICT did('purchase') WITHIN '90 days';
CREATE SEGMENT likely_buyers AS score('buy_90d') >= 0.5;
"""
AUC_GOAL = Goal("≥ the baseline's AUC", min_ratio=1.0)
BATCH = 10_000
BESIDE = 50  # benchmark segments deployed beside the model and the RFM map


def run(ctx: Context) -> list[Result]:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        note = "skipped: needs the ml extra (pip install 'segql[ml]')"
        return [Result(NAME, "holdout AUC of buy_90d", "AUC", note=note)]
    users, events = SIZES.get(ctx.scale.name, SIZES["small"])
    seed = ctx.seed + SEED_OFFSET
    with ctx.scratch("models") as url, psycopg.connect(url) as conn:
        ctx.log(f"models: loading {events:,} events of {users:,} users (seed {seed})")
        synth.copy_profiles(conn, synth.generate_profiles(users, seed, END))
        rows = synth.event_rows(events, users, seed, END - timedelta(days=DAYS), END, True)
        synth.copy_event_rows(conn, rows)
        segql_run.clock_set(conn, END)
        conn.commit()
        deploy.deploy(conn, parse_text(DEFINITIONS, "models.sql", ModelDialect))
        conn.commit()
        return _measure(ctx, conn, users, events)


def _measure(ctx: Context, conn: psycopg.Connection, users: int, events: int) -> list[Result]:
    from segql.models.train import train

    started = time.perf_counter()
    trained = train(conn, "buy_90d")
    seconds = time.perf_counter() - started
    conn.commit()
    ctx.log(f"models: segql train {seconds:.1f} s, holdout AUC {trained.holdout_auc:.3f}")
    cutoff = trained.holdout_cutoff
    hist = _histories(conn, cutoff)
    labels = _labels(conn, cutoff)
    bg, recency, details = _baselines(hist, labels)
    details.update(_families(trained))
    details.update(
        {
            "users": users,
            "events": events,
            "holdout_users": trained.holdout_examples,
            "holdout_positive_rate": round(trained.holdout_positive_rate, 4),
            "train_cutoffs": [c.isoformat() for c in trained.train_cutoffs],
            "terms": len(trained.terms),
            "candidates": trained.candidates,
        }
    )
    ctx.log(f"models: AUC segql {trained.holdout_auc:.3f}, BG/NBD {bg:.3f}, recency {recency:.3f}")
    scored, beside, raw = _copy_cost(conn, users)
    ctx.log(
        f"models: COPY {BATCH:,} events: {scored:.2f} s with likely_buyers, {beside:.2f} s with "
        f"the RFM map and {BESIDE} segments beside it, {raw:.2f} s raw"
    )
    data = f"{events:,} events of {users:,} users, 90-day horizon"
    return [
        Result(
            NAME,
            f"COPY of {BATCH:,} events with likely_buyers (score('buy_90d') >= 0.5, "
            f"{len(trained.terms)} terms) deployed vs raw COPY",
            "events/s",
            segql=BATCH / scored,
            baseline=BATCH / raw,
            goal=Goal("≥ 0.5x raw COPY", min_ratio=0.5),
        ),
        Result(
            NAME,
            f"COPY of {BATCH:,} events with likely_buyers, the RFM map and {BESIDE} benchmark "
            "segments deployed vs raw COPY",
            "events/s",
            segql=BATCH / beside,
            baseline=BATCH / raw,
            goal=Goal("≥ 0.5x raw COPY", min_ratio=0.5),
        ),
        Result(
            NAME,
            f"segql train buy_90d ({data}), seconds; baseline: none",
            "s",
            segql=seconds,
            details={"candidate_terms": trained.candidates, "kept_terms": len(trained.terms)},
        ),
        Result(
            NAME,
            f"holdout AUC of buy_90d ({data}): segql vs BG/NBD",
            "AUC",
            segql=trained.holdout_auc,
            baseline=bg,
            goal=AUC_GOAL,
            details=details,
        ),
        Result(
            NAME,
            f"holdout AUC of buy_90d ({data}): segql vs recency alone",
            "AUC",
            segql=trained.holdout_auc,
            baseline=recency,
            goal=AUC_GOAL,
        ),
    ]


def _histories(conn: psycopg.Connection, cutoff: datetime) -> dict[str, tuple[float, ...]]:
    """Per user with an event at the cutoff: (purchases, days from birth to the last purchase,
    days from birth to the cutoff, days since the last purchase or None)."""
    rows = conn.execute(
        """SELECT user_id,
                  count(*) FILTER (WHERE name = 'purchase'),
                  extract(epoch FROM max(ts) FILTER (WHERE name = 'purchase') - min(ts)) / 86400,
                  extract(epoch FROM %(cutoff)s - min(ts)) / 86400,
                  extract(epoch FROM %(cutoff)s - max(ts) FILTER (WHERE name = 'purchase'))
                      / 86400
           FROM segql.events WHERE ts <= %(cutoff)s GROUP BY user_id ORDER BY user_id""",
        {"cutoff": cutoff},
    ).fetchall()
    return {
        r[0]: (float(r[1]), float(r[2] or 0), float(r[3]), None if r[4] is None else float(r[4]))
        for r in rows
    }


def _labels(conn: psycopg.Connection, cutoff: datetime) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT user_id FROM segql.events WHERE name = 'purchase' AND ts > %s "
        "AND ts <= %s",
        [cutoff, cutoff + HORIZON],
    )
    return {r[0] for r in rows}


def _baselines(
    hist: dict[str, tuple[Any, ...]], labels: set[str]
) -> tuple[float, float, dict[str, Any]]:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from segql.models import bgnbd

    users = sorted(hist)
    y = np.array([u in labels for u in users], dtype=float)
    x = np.array([hist[u][0] for u in users])
    t_x = np.array([hist[u][1] for u in users])
    big_t = np.array([hist[u][2] for u in users])
    started = time.perf_counter()
    model = bgnbd.fit(x, t_x, big_t)
    fit_seconds = time.perf_counter() - started
    p = model.p_purchase(x, t_x, big_t, HORIZON.days)
    never = 1e9  # days since the last purchase of a user who never bought: last
    since = np.array([never if hist[u][3] is None else hist[u][3] for u in users])
    bg_auc = float(roc_auc_score(y, p))
    recency_auc = float(roc_auc_score(y, -since))
    details = {
        "bgnbd_params": {
            "r": model.r,
            "alpha": model.alpha,
            "a": model.a,
            "b": model.b,
        },
        "bgnbd_fit_seconds": round(fit_seconds, 2),
        "recency_auc": round(recency_auc, 4),
        "bgnbd_auc": round(bg_auc, 4),
    }
    return bg_auc, recency_auc, details


def _families(trained: Any) -> dict[str, Any]:
    """Logistic regression (what segql compiles) against gradient-boosted trees on the same terms
    and cutoffs: the measurement behind the choice of family."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    data = trained.data
    at = np.array(data.at)
    fit_rows, test_rows = at != 0, at == 0
    trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    trees.fit(data.x[fit_rows], data.y[fit_rows])
    trees_auc = float(
        roc_auc_score(data.y[test_rows], trees.predict_proba(data.x[test_rows])[:, 1])
    )
    return {
        "logistic_auc": round(trained.holdout_auc, 4),
        "boosted_trees_auc_same_terms": round(trees_auc, 4),
    }


def _copy_cost(conn: psycopg.Connection, users: int) -> tuple[float, float, float]:
    """Seconds to COPY a batch of the shop's next events with the model's segment deployed, then
    with the RFM map and the 50 benchmark segments deployed beside it, then (everything dropped,
    so no program runs) a batch of the same size raw."""
    from benchmarks import segments

    def copy(seed: int) -> float:
        rows = list(synth.event_rows(BATCH, users, seed, END - timedelta(hours=6), END))
        started = time.perf_counter()
        synth.copy_event_rows(conn, rows)
        return time.perf_counter() - started

    alone = copy(1)
    deploy.deploy(conn, parse_text(segments.definitions(BESIDE) + segments.rfm_map(), "beside.sql"))
    conn.commit()
    beside = copy(3)
    deploy.deploy(conn, [], prune=True)  # no segment left, so no program runs
    conn.commit()
    return alone, beside, copy(2)
