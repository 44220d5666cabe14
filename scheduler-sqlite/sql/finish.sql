-- machine::finish: one terminal write, guarded like a heartbeat, bound from
-- `Finish::columns()`. A success writes its rows_affected and result and
-- clears the retry time and the error (its :error_code and :error_msg are
-- NULL); a failure keeps rows_affected and result as they are, as in
-- machine::finish, and gets a retry time only while attempts remain.
-- finish_many runs it once per item, in one IMMEDIATE transaction, each
-- followed, when it wrote the row, by finish_log.sql, which appends the
-- attempt it ended to the attempts log.
UPDATE sys_cron_executions
SET status = :status, finished_at = :now, duration_ms = :duration_ms,
    rows_affected = CASE WHEN :status = 'SUCCESS' THEN :rows_affected ELSE rows_affected END,
    result = CASE WHEN :status = 'SUCCESS' THEN :result ELSE result END,
    next_retry_at = CASE WHEN :status = 'FAILED' AND attempt < max_attempts
                         THEN :retry_at END,
    error_code = :error_code, error_msg = :error_msg, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'RUNNING'
