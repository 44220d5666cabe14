-- The terminal rows a prune may delete (spliced into prune.sql and
-- prune_count.sql): finished before $1. The status list is exactly the
-- predicate of the partial index on finished_at, which is what lets the
-- planner walk it.
status IN ('SUCCESS', 'FAILED') AND finished_at < $1
