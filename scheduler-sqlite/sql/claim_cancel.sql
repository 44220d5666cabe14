-- A live run the overlap policy `cancel_other` replaced
-- (machine::cancel_for_overlap), written in the claim's transaction once the
-- newer key got its lease: every column the cancel changes takes the value
-- the machine computed from the row read just before (get.sql). Guarded
-- like every write to a lease: still RUNNING under the token read, so a run
-- an earlier key of the batch already canceled is left as it is. Its lease
-- ends with its RUNNING status, so its runner's next heartbeat cancels
-- the handler. The attempt it ends is logged after it (sweep_log.sql).
UPDATE sys_cron_executions
SET status = :status, next_retry_at = :next_retry_at, finished_at = :finished_at,
    duration_ms = :duration_ms, error_code = :error_code, error_msg = :error_msg,
    updated_at = :updated_at
WHERE id = :id AND status = 'RUNNING' AND lease_token = :read_token
