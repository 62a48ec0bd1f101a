"""`segql train`: learn a model from the database's own history before the clock.

At each past cutoff T, every user with an event at or before T is one example. Its features are
the candidate terms (`segql.models.features`) evaluated by the full-recompute machinery at the
instant T over the events stamped up to T; its label is the model's condition evaluated at
T + horizon over the events stamped in (T, T + horizon]. Traits are read as they are now
(profiles keep no history).

The most recent cutoff, clock - horizon, is the holdout: the model is fitted on cutoffs whose
horizon ends before it, and its AUC and calibration are measured there. The stored model is
then refitted on every cutoff. The family is L1-regularised logistic regression over the
0/1 terms: every term is an ordinary condition, so the score compiles to SQL the incremental
program already knows how to keep exact (docs/language.md, "Models").
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg

from segql import generate, ir
from segql.check import condition_of
from segql.errors import SegqlError
from segql.models import features, store
from segql.models.check import ModelDef
from segql.models.publish import publish

if TYPE_CHECKING:
    import numpy as np

MAX_TRAIN_CUTOFFS = 8
MIN_HISTORY = timedelta(days=7)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # sparsest first
AUC_SLACK = 0.005
DECIMALS = 6
Progress = Callable[[str], None]


class TrainError(SegqlError):
    """The model cannot be trained."""


class MissingDependency(TrainError):
    """Training needs the ml extra; scoring does not."""


MISSING = (
    "training needs numpy, scipy and scikit-learn, which are not installed: "
    "pip install 'segql[ml]'. Scoring needs nothing but Postgres."
)


@dataclass
class Examples:
    """One row per (cutoff, user): the terms that hold, and the label."""

    cutoffs: list[datetime]
    users: list[str]
    at: list[int]  # index into cutoffs
    x: np.ndarray
    y: np.ndarray


@dataclass
class TrainResult:
    model: str
    version: int
    clock: datetime
    holdout_cutoff: datetime
    train_cutoffs: list[datetime]
    holdout_auc: float
    holdout_examples: int
    holdout_positive_rate: float
    c: float
    terms: list[tuple[Decimal, str, float]]  # weight, condition, share of holdout users
    intercept: Decimal
    calibration: list[dict[str, float]]
    candidates: int
    seconds: float
    rescored: list[str] = field(default_factory=list)
    enters: int = 0
    exits: int = 0
    # The examples and the model fitted without the holdout, for comparisons (not stored).
    data: Examples | None = field(default=None, repr=False)
    holdout_model: tuple[Decimal, list[tuple[int, Decimal]]] | None = field(
        default=None, repr=False
    )

    def report(self) -> dict[str, Any]:
        return {
            "holdout_auc": self.holdout_auc,
            "holdout_cutoff": self.holdout_cutoff.isoformat(),
            "holdout_examples": self.holdout_examples,
            "holdout_positive_rate": self.holdout_positive_rate,
            "train_cutoffs": [c.isoformat() for c in self.train_cutoffs],
            "c": self.c,
            "candidates": self.candidates,
            "calibration": self.calibration,
            "seconds": self.seconds,
        }


def _ml() -> tuple[Any, Any, Any]:
    try:
        import numpy
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
    except ImportError:
        raise MissingDependency(MISSING) from None
    return numpy, LogisticRegression, roc_auc_score


def cutoffs(conn: psycopg.Connection, horizon: timedelta) -> tuple[datetime, list[datetime]]:
    """The holdout cutoff (clock - horizon) and the training cutoffs before it, newest first:
    the newest one's horizon ends at the holdout cutoff, the others step back by half a horizon
    while at least a week of history precedes them."""
    row = conn.execute("SELECT segql.now(), min(ts) FROM segql.events").fetchone()
    assert row is not None
    clock, first = row
    if first is None:
        raise TrainError("there are no events to learn from: ingest some history first")
    holdout = clock - horizon
    train: list[datetime] = []
    at = holdout - horizon
    while at >= first + MIN_HISTORY and len(train) < MAX_TRAIN_CUTOFFS:
        train.append(at)
        at -= horizon / 2
    if not train:
        need = 2 * horizon + MIN_HISTORY
        raise TrainError(
            f"not enough history: the first event is at {first.isoformat()}, and a model with "
            f"a horizon of {_days(horizon)} needs {_days(need)} of events before the clock "
            f"({clock.isoformat()}): one horizon to learn from, one to check on"
        )
    return holdout, train


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:g} days"


FEATURES_SQL = """WITH clk AS (SELECT %(cutoff)s::timestamptz AS now),
ev AS MATERIALIZED (SELECT * FROM segql.events WHERE ts <= %(cutoff)s)
"""
LABEL_SQL = """WITH clk AS (SELECT %(end)s::timestamptz AS now),
ev AS MATERIALIZED (SELECT * FROM segql.events WHERE ts > %(cutoff)s AND ts <= %(end)s)
"""
POPULATION = "(SELECT DISTINCT user_id FROM segql.events WHERE ts <= %(cutoff)s)"


def examples(
    conn: psycopg.Connection,
    model: ModelDef,
    terms: list[ir.Expr],
    at: list[datetime],
    progress: Progress | None = None,
) -> Examples:
    """Terms and labels of every user at each cutoff, from the full-recompute machinery."""
    np, _, _ = _ml()
    horizon = timedelta(seconds=float(model.horizon))
    held = [ir.IsBool(t, True) for t in terms]
    features_sql = FEATURES_SQL + generate.values_sql(
        held, "ev", "(SELECT DISTINCT user_id FROM ev)"
    )
    label = ir.IsBool(model.target, True)
    label_sql = LABEL_SQL + generate.values_sql([label], "ev", POPULATION)
    users: list[str] = []
    which: list[int] = []
    rows: list[list[bool]] = []
    labels: list[bool] = []
    for i, cutoff in enumerate(at):
        if progress:
            progress(f"cutoff {cutoff.isoformat()}")
        params = {"cutoff": cutoff, "end": cutoff + horizon}
        got = {r[0]: bool(r[1]) for r in conn.execute(label_sql.encode(), params)}
        for r in conn.execute(features_sql.encode(), params):
            users.append(r[0])
            which.append(i)
            rows.append([bool(v) for v in r[1:]])
            labels.append(got.get(r[0], False))
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(terms))
    return Examples(list(at), users, which, x, np.array(labels, dtype=np.float64))


def _fit(x: Any, y: Any, c: float) -> tuple[float, Any]:
    np, logistic, _ = _ml()
    from sklearn.exceptions import ConvergenceWarning

    fitted = logistic(C=c, l1_ratio=1.0, solver="liblinear", max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted.fit(x, y)
    return float(fitted.intercept_[0]), np.asarray(fitted.coef_[0])


def _rounded(intercept: float, weights: Any) -> tuple[Decimal, list[tuple[int, Decimal]]]:
    q = Decimal(1).scaleb(-DECIMALS)
    kept = [(j, Decimal(repr(float(w))).quantize(q)) for j, w in enumerate(weights)]
    return Decimal(repr(intercept)).quantize(q), [(j, w) for j, w in kept if w != 0]


def predict(x: Any, intercept: Decimal, weights: list[tuple[int, Decimal]]) -> Any:
    """What the compiled score computes (before its 6-digit rounding), for measurements."""
    np, _, _ = _ml()
    z = np.full(x.shape[0], float(intercept))
    for j, w in weights:
        z += x[:, j] * float(w)
    return 1 / (1 + np.exp(-np.clip(z, -30, 30)))


def _auc(y: Any, p: Any) -> float:
    _, _, roc_auc = _ml()
    if len(set(y.tolist())) < 2:
        return float("nan")
    return float(roc_auc(y, p))


def _choose_c(data: Examples, train_idx: list[int]) -> float:
    """The regularisation chosen on the newest training cutoff, fitted on the others (the
    holdout plays no part); with a single training cutoff, the middle of the grid."""
    np, _, _ = _ml()
    at = np.array(data.at)
    if len(train_idx) < 2:
        return C_GRID[1]
    newest = min(train_idx)  # cutoffs are newest first
    fit_rows = np.isin(at, [i for i in train_idx if i != newest])
    val_rows = at == newest
    aucs = {}
    for c in C_GRID:
        b, w = _fit(data.x[fit_rows], data.y[fit_rows], c)
        aucs[c] = _auc(data.y[val_rows], predict(data.x[val_rows], *_rounded(b, w)))
    if all(math.isnan(a) for a in aucs.values()):
        return C_GRID[1]
    best = max(a for a in aucs.values() if not math.isnan(a))
    # The sparsest model within AUC_SLACK of the best: every term is work in the write path.
    return next(c for c in C_GRID if aucs[c] >= best - AUC_SLACK)


def calibration(y: Any, p: Any, bins: int = 10) -> list[dict[str, float]]:
    """Holdout users in `bins` groups of equal size by score: mean score vs observed rate."""
    np, _, _ = _ml()
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part) == 0:
            continue
        out.append(
            {
                "users": len(part),
                "low": float(p[part].min()),
                "high": float(p[part].max()),
                "predicted": float(p[part].mean()),
                "observed": float(y[part].mean()),
            }
        )
    return out


def train(conn: psycopg.Connection, name: str, progress: Progress | None = None) -> TrainResult:
    """Fit, measure on the holdout, refit on everything, store and re-score (one transaction)."""
    np, _, _ = _ml()
    started = time.monotonic()
    deployed = store.get(conn, name)
    model = deployed.model
    horizon = timedelta(seconds=float(model.horizon))
    holdout, train_at = cutoffs(conn, horizon)
    texts = features.candidates(conn, train_at[0])
    terms = [condition_of(t, f"<model {name} candidate>") for t in texts]
    data = examples(conn, model, terms, [holdout, *train_at], progress)
    at = np.array(data.at)
    train_idx = list(range(1, len(data.cutoffs)))
    test_rows, train_rows = at == 0, at != 0
    if len(set(data.y[train_rows].tolist())) < 2:
        raise TrainError(
            f"every training example has the same label ({bool(data.y[train_rows][0])}): "
            "there is nothing to learn; check the model's condition or ingest more history"
        )
    c = _choose_c(data, train_idx)
    b, w = _fit(data.x[train_rows], data.y[train_rows], c)
    intercept, weights = _rounded(b, w)
    p_test = predict(data.x[test_rows], intercept, weights)
    y_test = data.y[test_rows]
    auc = _auc(y_test, p_test)
    table = calibration(y_test, p_test)
    # The stored model learns from every cutoff, the holdout's included.
    final_b, final_w = _fit(data.x, data.y, c)
    final_intercept, final_weights = _rounded(final_b, final_w)
    share = data.x[test_rows].mean(axis=0) if test_rows.any() else np.zeros(len(terms))
    ranked = sorted(final_weights, key=lambda jw: -abs(jw[1]))
    result = TrainResult(
        model=name,
        version=0,
        clock=holdout + horizon,
        holdout_cutoff=holdout,
        train_cutoffs=train_at,
        holdout_auc=auc,
        holdout_examples=int(test_rows.sum()),
        holdout_positive_rate=float(y_test.mean()) if len(y_test) else float("nan"),
        c=c,
        terms=[(wt, texts[j], float(share[j])) for j, wt in ranked],
        intercept=final_intercept,
        calibration=table,
        candidates=len(texts),
        seconds=0.0,
        data=data,
        holdout_model=(intercept, weights),
    )
    spec = {
        "intercept": str(final_intercept),
        "terms": [{"weight": str(wt), "condition": texts[j]} for j, wt in ranked],
    }
    if progress:
        progress("storing the model and re-scoring")
    before = _last_seq(conn)
    result.seconds = time.monotonic() - started
    result.version, deployed_result = publish(conn, model, spec, result.report())
    result.rescored = deployed_result.changed
    result.enters, result.exits = _logged(conn, before)
    result.seconds = time.monotonic() - started
    return result


def _last_seq(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM segql.changes").fetchone()
    return int(row[0]) if row else 0


def _logged(conn: psycopg.Connection, after: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE kind = 'enter'), count(*) FILTER (WHERE kind = 'exit') "
        "FROM segql.changes WHERE seq > %s AND cause = 'model'",
        [after],
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
