-- An operator's retry, first step: the row ($2) read and locked, with the
-- store time machine::operator_retry is applied at. The lock keeps a claim,
-- finish or prune from slipping in before operator_retry.sql writes.
SELECT {columns}, {now} AS store_now FROM {table} WHERE id = $2 FOR UPDATE
