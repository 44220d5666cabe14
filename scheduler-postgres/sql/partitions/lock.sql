-- The executions table's exclusive lock, for the check and detach of one
-- partition (droppable.sql, detach.sql): taken on the parent first, the
-- order every statement on the table takes its locks in, so it cannot
-- deadlock with them. Claims and finishes queue behind it for the
-- milliseconds the check and the detach take; `lock_timeout` (set by
-- partitions.rs) bounds how long it waits, and so how long they queue
-- behind a waiting prune, when a long transaction holds the table.
LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE
