-- The tally (migration 8) loses the ended FAILED rows of a partition about
-- to be detached (detach.sql): its rows leave the table without a DELETE,
-- so no trigger subtracts them. Run in the transaction that holds the
-- table's lock and then detaches, so the tally and the table change at one
-- commit. A walk of the partition's partial index of FAILED rows
-- (migration 7), grouped by scope: it holds the lock for as long as that
-- walk takes (one partition's FAILED rows; a retention that drops daily
-- partitions of a 10,000-scope fleet reads some tens of thousands).
{tally_add_partition}
