-- Takes one partition out of the executions table, in the transaction that
-- checked it (droppable.sql): from the commit on, its rows are no longer
-- the table's, and the rest of the retention (its attempts log, its count,
-- the drop) runs without holding the table's lock. Plans of its range
-- inserted later land in the DEFAULT partition.
ALTER TABLE {table} DETACH PARTITION {partition}
