-- A deleted stored schedule's row ($1), as job::apply_write decided; its
-- executions stay, attached to its name.
DELETE FROM {schedules} WHERE name = $1
