-- The job's claim lock (docs/contract.md §11, admission): the first statement
-- of every claim (claim.rs) and of every addition of a control
-- (control_add.sql), a transaction-level advisory lock that the commit or
-- rollback releases, on a 64-bit key hashed from the executions table and
-- the job name ($2). The table is taken by its oid, so stores that spell its
-- name differently (a schema given, or found through the search_path) still
-- share the lock. {lock} is `pg_advisory_xact_lock`, or its shared form for
-- a claim whose admission weighs no live run (policy allow_all): such claims
-- must exclude the addition of a pause, never each other.
--
-- Keys may collide: two jobs (or a job and another application's advisory
-- lock) sharing a key only serialise each other's claims, which costs time
-- and never correctness.
--
-- The answer is store time, which now() fixes for the whole transaction:
-- admission and every statement of the claim decide at it. ($1 as in every
-- statement; the lock's own result, void, is not read.)
SELECT {lock}(hashtextextended('{table}'::regclass::oid::text || ':' || $2, 0))::text AS locked,
       {now} AS store_now
