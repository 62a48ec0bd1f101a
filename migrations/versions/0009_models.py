"""Predictive models: definitions and their trained versions.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- A model as deployed (CREATE MODEL ... PREDICT ... WITHIN ...). `version` is the trained
-- version that score() reads, 0 while it has none: a changed definition starts untrained.
CREATE TABLE segql.models (
    name            text PRIMARY KEY,
    definition      text NOT NULL,
    comment         text,
    source          text,
    horizon_seconds numeric NOT NULL,
    fingerprint     text NOT NULL,
    version         integer NOT NULL DEFAULT 0,
    defined_at      timestamptz NOT NULL DEFAULT now()
);

-- Every trained version: the weighted terms score() compiles to, and what training measured
-- (holdout AUC, calibration, the cutoffs it learned from) at the clock it trained at.
CREATE TABLE segql.model_versions (
    name       text NOT NULL,
    version    integer NOT NULL,
    definition text NOT NULL,
    spec       jsonb NOT NULL,
    report     jsonb NOT NULL,
    clock      timestamptz NOT NULL,
    trained_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Which trained version of a model each deployed segment was compiled with (0: untrained), so
-- that a retrained model is a change to the segments that read it.
CREATE TABLE segql.model_readers (
    segment text NOT NULL,
    model   text NOT NULL,
    version integer NOT NULL,
    PRIMARY KEY (segment, model)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS segql.model_readers;
DROP TABLE IF EXISTS segql.model_versions;
DROP TABLE IF EXISTS segql.models;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
