-- One row by id ($1), through the primary key.
SELECT {columns}
FROM {table} WHERE id = $1
