-- Named runtime statements, loaded by name through segql.sqlfiles.query().
-- Values are always bind parameters; nothing is formatted into this text.

-- name: insert_reject
INSERT INTO segql.rejects (source, line, reason, raw)
VALUES (%(source)s, %(line)s, %(reason)s, %(raw)s);

-- name: copy_events_with_ts
COPY segql.events (user_id, name, ts, props) FROM STDIN;

-- name: copy_events_without_ts
COPY segql.events (user_id, name, props) FROM STDIN;

-- name: create_profiles_stage
CREATE TEMP TABLE IF NOT EXISTS segql_profiles_stage (
  user_id text NOT NULL,
  traits jsonb NOT NULL
) ON COMMIT DELETE ROWS;

-- name: copy_profiles_stage
COPY segql_profiles_stage (user_id, traits) FROM STDIN;

-- name: merge_profiles_stage
-- The loader folds repeated users within a batch first: ON CONFLICT cannot touch a row twice.
INSERT INTO segql.profiles AS p (user_id, traits)
SELECT user_id, traits FROM segql_profiles_stage
ON CONFLICT (user_id) DO UPDATE
  SET traits = p.traits || excluded.traits, updated_at = now();

-- name: server_info
SELECT current_setting('server_version') AS version, current_database() AS database;

-- name: table_estimate
SELECT c.reltuples::bigint
FROM pg_class c
WHERE c.oid = to_regclass(%(table)s);
