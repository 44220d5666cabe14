-- Every column of a record of the attempts log, in the order the stores
-- insert and read them (`Attempt`'s fields).
execution_id, attempt, runner_id, started_at, ended_at, outcome, error_code, error_msg,
duration_ms
