-- One range partition, [$lower, $upper) of plan_time; the bounds are
-- literals (DDL takes no parameters), written by partitions.rs from
-- instants it computed. Refused by the server when the DEFAULT partition
-- holds a row of the range; partitions.rs checks that first
-- (default_rows.sql) and leaves such a range to the DEFAULT partition.
CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {table}
    FOR VALUES FROM ('{lower}') TO ('{upper}')
