-- One page of a detached partition (detach.sql): at most $2 executions, by
-- id from after $1 (nil for the first), whose attempts log it deletes. The
-- log has no partitions of its own (it is keyed by execution id alone), so
-- before a partition is dropped its records are deleted in bounded
-- statements, as prune.sql deletes them with their rows. Returns the
-- page's size and last id (0 and NULL past the end); the sizes add up to
-- the partition's rows, the call's result (nothing writes to a detached
-- partition, so the sum is exact), without a count of its own.
WITH page AS (
    SELECT id FROM {partition} WHERE id > $1 ORDER BY id LIMIT $2),
gone AS (
    DELETE FROM {attempts} WHERE execution_id = ANY (ARRAY(SELECT id FROM page)))
SELECT count(*) AS rows, (SELECT id FROM page ORDER BY id DESC LIMIT 1) AS last FROM page
