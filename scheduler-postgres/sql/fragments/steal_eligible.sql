-- machine::steal_eligible, the one spelling of the takeover rule in this
-- store (spliced into claim_reclaim.sql): a RUNNING row of a job that allows
-- stale re-entry, with an attempt left, whose lease went stale before {now}.
-- Placeholders as in retry_eligible.sql.
--
-- A NULL `stale_after` is never stale, as `is_some_and` says; SQL's
-- `NULL < x` is not true either.
status = 'RUNNING' AND {allow_stale_reentry} AND attempt < max_attempts
AND stale_after < {now}
