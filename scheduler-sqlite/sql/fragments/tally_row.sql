-- One row a trigger saw ({row}: NEW or OLD), as the relation
-- fragments/tally_add.sql counts, with its sign ({sign}).
SELECT {sign} AS sign, {row}.job_name AS job_name, {row}.scope_kind AS scope_kind,
    {row}.scope_id AS scope_id, {row}.status AS status, {row}.attempt AS attempt,
    {row}.max_attempts AS max_attempts, {row}.error_code AS error_code
