"""Campaigns: a signed webhook for each segment entry or exit, planned from the change log.

The pipeline mirrors the segments' one: `parse` (CREATE CAMPAIGN, in a subclass of the segment
dialect) -> `check` (a `Campaign` or an error with file:line:col) -> `deploy` (the catalog row and
the cursor, in the segment deploy's transaction) -> `plan` (changes to delivery rows, in the
transaction that advances the cursor) -> `deliver` (the worker claims due rows with
FOR UPDATE SKIP LOCKED, signs them with `sign` and POSTs them past the `guard`).
"""
