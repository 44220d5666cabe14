-- The executions table of a new installation that asked for partitions
-- (`PgStoreOptions::partitioned`, docs/contract.md §10, "Partitioned
-- executions"): created before migration 1, which then adopts it as it
-- adopts the seed's (its `CREATE TABLE IF NOT EXISTS` does nothing; its
-- indexes, and those of the later migrations, are created on this parent
-- and so on every partition). Only ever run on a table that does not exist:
-- an existing table, the seed's or ours, is never repartitioned.
--
-- {template} is migration 1's table, created by schema.rs from that
-- migration's own text in `pg_temp` just before, so the columns, defaults
-- and checks are written once and this table has exactly them. The one
-- difference is the primary key: PostgreSQL requires every unique
-- constraint of a partitioned table to contain the partition key, so it is
-- (id, plan_time) instead of (id). Ids are still unique: each is a fresh
-- UUIDv7. The unique key of the plan already contains plan_time and keeps
-- its name.
--
-- The DEFAULT partition takes every row no range partition covers (a plan
-- before the oldest partition, a backfill, a plan past those created
-- ahead), so an insert never fails for want of a partition.
CREATE TABLE {table} (
    LIKE {template} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id, plan_time),
    CONSTRAINT {uq} UNIQUE (job_name, scope_kind, scope_id, plan_time)
) PARTITION BY RANGE (plan_time);
DROP TABLE {template};
CREATE TABLE {default_partition} PARTITION OF {table} DEFAULT
