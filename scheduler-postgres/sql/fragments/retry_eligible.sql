-- machine::retry_eligible, the one spelling of the retry rule in this store
-- (spliced into claim_reclaim.sql, retry_due.sql and summaries.sql): a
-- FAILED row with an attempt left, due by {now} (`next_retry_at` null or not
-- after it), and not a row the sweep closed (`stale_timeout`) of a job that
-- forbids stale re-entry.
--
-- Placeholders, the same in both stores: {now}, the instant the rule is
-- decided at; {allow_stale_reentry}, a boolean (the statement's parameter,
-- or a literal where the statement fixes it). Columns are unqualified: every
-- statement it goes into reads them from the executions table alone.
--
-- `IS DISTINCT FROM` because a NULL error code must count as "not
-- stale_timeout", as `None != Some(..)` does.
--
-- The code is written out, not bound, here and in every statement of both
-- stores, as the status words are: error codes are persisted vocabulary,
-- which the seed reads too and which can never change, and a literal is what
-- the planner (and SQLite's partial-index matching) can see. A unit test
-- holds the literals to `ErrorCode::StaleTimeout` and
-- `machine::OPERATOR_RETRY_CODE`.
status = 'FAILED' AND attempt < max_attempts
AND (next_retry_at IS NULL OR next_retry_at <= {now})
AND ({allow_stale_reentry} OR error_code IS DISTINCT FROM 'stale_timeout')
