-- Retention of a whole partition, detached before (detach.sql): its rows go
-- without being deleted one by one (no row lock, no WAL per row, no dead
-- tuples for vacuum), and no lock of the executions table is needed.
DROP TABLE {partition}
