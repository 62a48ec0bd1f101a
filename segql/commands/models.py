"""Model commands: train, scores, models; `segql why <model> <user>` lives with why."""

from __future__ import annotations

import csv
import json
import math
import sys
from decimal import Decimal

import typer

from segql import grants
from segql.commands import state
from segql.models import scores as scores_api
from segql.models import store
from segql.models.train import TrainResult, train


def register(app: typer.Typer) -> None:
    app.command("train")(train_)
    app.command("scores")(scores)
    app.command("models")(models)


def train_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name (CREATE MODEL <name> ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
) -> None:
    """Train a model from the database's own history before the clock, store it as a new
    version and re-score the segments that read it (changes logged with cause 'model')."""

    def progress(step: str) -> None:
        if not as_json:
            typer.echo(f"  {step}", err=True)

    with state(ctx).connect() as conn:
        result = train(conn, name.lower(), progress)
    if as_json:
        out = {"model": result.model, "version": result.version, **result.report()}
        out["intercept"] = float(result.intercept)
        out["terms"] = [
            {"weight": float(w), "condition": c, "holdout_share": s} for w, c, s in result.terms
        ]
        out["rescored"] = result.rescored
        typer.echo(json.dumps(out, indent=2))
        return
    for line in train_lines(result):
        typer.echo(line)


def train_lines(r: TrainResult) -> list[str]:
    lines = [
        f"Trained {r.model} v{r.version} in {r.seconds:.1f} s from {len(r.train_cutoffs)} "
        f"cutoff(s) ({r.train_cutoffs[-1].date()} .. {r.train_cutoffs[0].date()}), "
        f"{r.candidates} candidate terms.",
        f"Holdout (users at {r.holdout_cutoff.isoformat(timespec='seconds')}, labels up to the "
        f"clock): {r.holdout_examples} users, {_pct(r.holdout_positive_rate)} positive, "
        f"AUC {r.holdout_auc:.3f}.",
        "Calibration on the holdout (users in tenths by score):",
        f"  {'SCORE FROM':>10}  {'TO':>6}  {'USERS':>6}  {'PREDICTED':>9}  {'OBSERVED':>8}",
    ]
    for row in r.calibration:
        lines.append(
            f"  {row['low']:>10.3f}  {row['high']:>6.3f}  {int(row['users']):>6}  "
            f"{_pct(row['predicted']):>9}  {_pct(row['observed']):>8}"
        )
    lines.append(f"Top terms (of {len(r.terms)}; intercept {r.intercept}):")
    for weight, condition, share in r.terms[:10]:
        lines.append(f"  {weight:>+10.4f}  {condition}  (holds for {_pct(share)})")
    if r.rescored:
        lines.append(
            f"Re-scored {', '.join(r.rescored)}: {r.enters} entered, {r.exits} left "
            "(cause 'model')."
        )
    else:
        lines.append(f"No segment reads score('{r.model}') yet.")
    return lines


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f} %"


def scores(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines: user_id, score."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header: user_id,score."),
) -> None:
    """Print the score of every user with at least one event, computed in the database now."""
    with state(ctx).connect() as conn, grants.reading_user_data("segql scores"):
        rows = scores_api.scores(conn, name.lower())
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["user_id", "score"])
        writer.writerows([user, "" if s is None else str(s)] for user, s in rows)
        return
    for user, s in rows:
        if as_json:
            typer.echo(json.dumps({"user_id": user, "score": None if s is None else float(s)}))
        else:
            typer.echo(f"{user}\t{'' if s is None else s}")


def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="A JSON array."),
) -> None:
    """List deployed models with their live version and holdout AUC."""
    with state(ctx).connect() as conn:
        rows = store.listing(conn)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("No models deployed. Deploy a file with CREATE MODEL ... PREDICT ... WITHIN.")
        return
    for row in rows:
        auc = row["holdout_auc"]
        trained = (
            f"v{row['version']}, trained {row['trained_at']}, holdout AUC {auc:.3f}"
            if row["version"]
            else "not trained (score() is NULL): run segql train " + str(row["name"])
        )
        typer.echo(f"{row['name']}: {row['definition']}\n  {trained}")


def explanation_lines(e: scores_api.ScoreExplanation) -> list[str]:
    if e.intercept is None:
        return [
            f"{e.model} is not trained yet, so score('{e.model}') is NULL for everyone.",
            f"Train it with: segql train {e.model}",
        ]
    lines = [
        f"score('{e.model}') for {e.user_id} is {e.score} (v{e.version}), at {e.now.isoformat()}.",
        f"  logit {e.logit} = intercept {e.intercept} + the weights of the terms that hold;",
        "  score = 1 / (1 + exp(-logit)).",
    ]
    for t in e.terms:
        mark = "yes" if t.holds else "no "
        added = t.weight if t.holds else Decimal(0)
        lines.append(f"  [{mark}] {added:>+10.4f}  (weight {t.weight:+.4f})  {t.condition}")
    return lines
