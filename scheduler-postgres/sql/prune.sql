-- Pruning: terminal rows finished before $1, oldest first, at most $2 per
-- statement, so that one call never holds many row locks or writes much WAL
-- at once; the inner query walks the partial index on finished_at (whose
-- predicate is exactly this status list) in order and stops at the limit.
-- The outer WHERE repeats the conditions on purpose: if a concurrent claim
-- retried a selected FAILED row, the DELETE waits for it and re-checks the
-- outer conditions against the new version (RUNNING, finished_at NULL),
-- which then no longer matches; the inner query's row version would still
-- say FAILED, so without them a live lease could be deleted.
--
-- Rows finished at one instant (a sweep's, a batch's) are taken in key
-- order, bytewise ("C"), as the memory and SQLite stores take them: with
-- `finished_at` alone, which of them a limited prune deletes would be
-- whatever order the plan meets them in. The index still gives the order by
-- `finished_at`; only rows that tie are sorted (an incremental sort), and
-- the LIMIT still stops the walk.
--
-- The registry rows of replicas last seen before the cutoff go too (the
-- replica registry's retention): a replica silent that long is stopped or
-- gone, and a fleet that restarts often would otherwise pile them up.
--
-- The rows are found again by `= ANY (ARRAY(...))` of their ids and plan
-- times, not by `id IN (...)`: on a partitioned table (docs/contract.md
-- §10, "Partitioned executions") the IN became a hash join over a scan of
-- every partition (0.9 s for 1,000 rows of a 1M-row table), where the
-- arrays make each partition an index probe of its primary key
-- (id, plan_time), and the plan times let the executor skip the partitions
-- none of them fall in. On an unpartitioned table it is the same probe of
-- the primary key on id.
--
-- The attempts logs of the rows deleted go in the same statement, found
-- through the log's primary key: `= ANY (ARRAY(...))` makes them an index
-- probe per row, where a join with the CTE could be planned as a scan of the
-- whole log. (A record a transition appends while the prune waits for its
-- row, and whose row the prune then deletes, which takes a cutoff at store
-- time, is not in the statement's snapshot and stays; nothing reads it.)
WITH doomed AS MATERIALIZED (
    SELECT id, plan_time FROM {table} WHERE {prunable}
    ORDER BY finished_at, job_name COLLATE "C",
             scope_kind COLLATE "C", scope_id COLLATE "C", plan_time
    LIMIT $2),
pruned AS (
    DELETE FROM {table}
    WHERE id = ANY (ARRAY(SELECT id FROM doomed))
      AND plan_time = ANY (ARRAY(SELECT plan_time FROM doomed))
      AND {prunable}
    RETURNING id),
logs AS (
    DELETE FROM {attempts} WHERE execution_id = ANY (ARRAY(SELECT id FROM pruned))),
gone AS (
    DELETE FROM {replicas} WHERE last_seen_at < $1)
SELECT count(*) AS pruned FROM pruned
