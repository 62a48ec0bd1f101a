"""Make a trained version live: store it and re-score every segment that reads the model.

Both happen in one transaction: the segments that read score('<model>') get a new version
compiled with the new terms, every user is evaluated again, and whoever enters or leaves is
logged with cause 'model'.
"""

from __future__ import annotations

from typing import Any

import psycopg

from segql import deploy
from segql.models import store
from segql.models.check import ModelDef


def publish(
    conn: psycopg.Connection,
    model: ModelDef,
    spec: dict[str, Any],
    report: dict[str, Any],
    progress: deploy.Progress | None = None,
) -> tuple[int, deploy.DeployResult]:
    with conn.transaction():
        version = store.save_version(conn, model, spec, report)
        result = deploy.deploy(conn, [], cause="model", progress=progress)
    return version, result
