-- Whether the DEFAULT partition holds a row of the range [$1, $2): then a
-- partition of that range cannot be created (the server would refuse it),
-- and the range stays in the DEFAULT partition. Normally empty, so the
-- scan costs nothing.
SELECT EXISTS (SELECT 1 FROM {default_partition} WHERE plan_time >= $1 AND plan_time < $2)
