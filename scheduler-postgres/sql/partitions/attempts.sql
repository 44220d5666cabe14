-- One page of a detached partition (detach.sql): at most $3 executions, in
-- primary-key order from after ($1 id, $2 plan time) (the nil uuid and
-- NULL, read as '-infinity', for the first page: every uuid, the nil one
-- too, is a possible id, and no plan time is before '-infinity', which no
-- client type holds), whose attempts log
-- it deletes. A row comparison over the whole key, so each page is a range
-- of the primary key's index. The log has no partitions of its own (it is
-- keyed by execution id alone), so before a partition is dropped its
-- records are deleted in bounded statements, as prune.sql deletes them with
-- their rows. Returns the page's size and its last key (0 and NULLs past
-- the end); the sizes add up to the partition's rows, the call's result
-- (nothing writes to a detached partition, so the sum is exact), without a
-- count of its own.
WITH page AS (
    SELECT id, plan_time FROM {partition}
    WHERE (id, plan_time) > ($1, coalesce($2::timestamptz, '-infinity'))
    ORDER BY id, plan_time LIMIT $3),
gone AS (
    DELETE FROM {attempts} WHERE execution_id = ANY (ARRAY(SELECT id FROM page))),
last AS (SELECT id, plan_time FROM page ORDER BY id DESC, plan_time DESC LIMIT 1)
SELECT (SELECT count(*) FROM page) AS rows, last.id, last.plan_time
FROM (SELECT 1) AS one LEFT JOIN last ON true
