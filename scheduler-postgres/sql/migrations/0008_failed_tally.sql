-- Version 8: the operator's reads count the FAILED rows that ended for good
-- without reading them (docs/contract.md §10, "Operator reads"). Nearly all
-- FAILED rows of a long history are `exhausted` (no attempt left) or
-- `skipped` (an overlap code), and stay so until pruned: at 100M rows the
-- FAILED index of migration 7 holds a million of them, and counting them
-- was what the summaries cost. So:
--
-- - {tally}: per (job, scope), how many of its rows are exhausted and
--   skipped (the classes of fragments/tally_add.sql), kept by triggers on
--   the executions table. Triggers, not the store's own statements, so
--   every writer keeps it: the seed's replicas, a hand-written UPDATE, the
--   prune's DELETE. Statement-level, with transition tables: one upsert per
--   statement whatever the rows it changed (a claim's batch, a prune's),
--   and none at all when no FAILED row was written or removed, the case of
--   nearly every claim and finish. They are allowed on a partitioned table
--   (`PgStoreOptions::partitioned`) and see the rows of every partition;
--   a partition's retention, which detaches it (no DELETE), subtracts its
--   rows itself (partitions/untally.sql). A TRUNCATE of the table empties
--   the tally. Whatever else bypasses the triggers is repaired by a rebuild
--   (tally_rebuild.sql, which is also this migration's backfill).
-- - {idx_failed_retryable}: the other FAILED rows, those with an attempt
--   left (fragments/failed_retryable.sql), which the summaries still count
--   row by row (their due times matter): normally a few per scope.
--
-- The trigger function runs with the privileges of the role writing the
-- executions row: a role that writes that table (the seed's, say) needs
-- INSERT and UPDATE on {tally} too.
--
-- Built in the migration's transaction: the index build scans the table,
-- and the backfill holds the table's SHARE lock (writes wait) while it
-- walks the FAILED index. On a large table, create the index first with
-- `CREATE INDEX CONCURRENTLY` under this name (`IF NOT EXISTS` then makes
-- it a no-op).
CREATE TABLE IF NOT EXISTS {tally} (
    job_name   TEXT   NOT NULL,
    scope_kind TEXT   NOT NULL,
    scope_id   TEXT   NOT NULL,
    exhausted  BIGINT NOT NULL DEFAULT 0,
    skipped    BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT {tally_pk} PRIMARY KEY (job_name, scope_kind, scope_id)
);
CREATE INDEX IF NOT EXISTS {idx_failed_retryable}
    ON {table} (job_name, scope_kind, scope_id, error_code, attempt, max_attempts,
                next_retry_at, status)
    WHERE {failed_retryable};
-- The FAILED rows a statement wrote (new_rows) and those it replaced or
-- deleted (old_rows), each counted with its sign: an UPDATE that takes a
-- row out of a class and one that puts it in net out per scope. Only the
-- event's own transition tables exist (an INSERT has no old rows), hence the
-- branches; plpgsql plans a branch when it first runs it.
CREATE OR REPLACE FUNCTION {tally_apply}() RETURNS trigger LANGUAGE plpgsql AS $tally$
DECLARE
    added   {table}[] := '{}';
    removed {table}[] := '{}';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM {tally};
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        added := ARRAY(SELECT n FROM new_rows n WHERE n.status = 'FAILED');
    END IF;
    IF TG_OP <> 'INSERT' THEN
        removed := ARRAY(SELECT o FROM old_rows o WHERE o.status = 'FAILED');
    END IF;
    IF cardinality(added) + cardinality(removed) > 0 THEN
        WITH changes AS (
            SELECT 1 AS sign, a.* FROM unnest(added) a
            UNION ALL
            SELECT -1, o.* FROM unnest(removed) o)
        {tally_add_changes};
    END IF;
    RETURN NULL;
END
$tally$;
DROP TRIGGER IF EXISTS tally_inserted ON {table};
CREATE TRIGGER tally_inserted AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {tally_apply}();
DROP TRIGGER IF EXISTS tally_updated ON {table};
CREATE TRIGGER tally_updated AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {tally_apply}();
DROP TRIGGER IF EXISTS tally_deleted ON {table};
CREATE TRIGGER tally_deleted AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {tally_apply}();
DROP TRIGGER IF EXISTS tally_truncated ON {table};
CREATE TRIGGER tally_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {tally_apply}();
{tally_rebuild}
