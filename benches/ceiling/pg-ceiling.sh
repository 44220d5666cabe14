#!/usr/bin/env bash
# pg-ceiling.sh: the raw-SQL ceiling for claim + finish on one PostgreSQL server.
#
# What it measures
#   Every execution costs the store two writes: a claim (an insert of a
#   RUNNING row into the executions table) and a finish (an update guarded by
#   id, lease token and status). This script times exactly those statements
#   with pgbench, with no scheduler in between, in two shapes:
#     per_plan  one plan per statement, with a store-time read before each
#               write (per_plan.pgbench): the round trips the seed, the Go
#               scheduler this project was ported from (docs/contract.md §1),
#               makes for every plan;
#     batch100  100 plans per statement: INSERT ... SELECT ... ON CONFLICT
#               DO NOTHING RETURNING, then UPDATE ... FROM unnest(ids, tokens)
#               (batch100.pgbench);
#   each with 1 and with 4 clients, on the seed's table (executions.sql).
#
# How it is used
#   `cargo run -p benches --release -- all` runs it (PG_CEILING overrides the
#   path) in the same run as the library's own measurements and prints the
#   library's plans/s divided by these figures: how close the scheduler
#   comes to what the server can do at all. It can also be run by hand:
#     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
#       bash benches/ceiling/pg-ceiling.sh [SECONDS]
#   SECONDS is the length of each of the four pgbench runs (default 10).
#   DATABASE_URL names a database on the server to measure (default: the
#   local socket, postgres:///postgres); its user must be allowed to create
#   databases. Needs psql, pgbench (Debian: the postgresql-NN package) and python3.
#
# What it prints
#   On stdout, one line per shape and client count, in this order:
#     ceiling per_plan clients=1 plans_per_s=<n>
#     ceiling per_plan clients=4 plans_per_s=<n>
#     ceiling batch100 clients=1 plans_per_s=<n>
#     ceiling batch100 clients=4 plans_per_s=<n>
#   where <n> is pgbench's transactions per second times the plans per
#   transaction, rounded. Problems go to stderr with a non-zero exit status
#   (2: pgbench missing; 1: a run failed).
#
# What it leaves behind
#   Nothing. It works in a scratch database, ceiling_<pid>_<random>, created
#   on the same server and dropped (WITH (FORCE)) when the script exits,
#   whether it succeeds, fails or is interrupted.
set -euo pipefail
secs=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
admin=${DATABASE_URL:-postgres:///postgres}
command -v pgbench >/dev/null || { echo "pg-ceiling: pgbench not found (Debian: the postgresql-15 package ships it)" >&2; exit 2; }
command -v psql >/dev/null || { echo "pg-ceiling: psql not found" >&2; exit 2; }
db=ceiling_$$_$RANDOM
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
# Make an interrupt end the script through the EXIT trap too.
trap 'exit 130' INT TERM HUP
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
# same server, the scratch database instead of the admin one
url=$(python3 - "$admin" "$db" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
PY
)
psql -q -v ON_ERROR_STOP=1 "$url" -f "$here/executions.sql" >/dev/null
run() { # shape script clients plans_per_transaction
  local tps
  tps=$(pgbench -n -M prepared -f "$here/$2" -c "$3" -j "$(( $3 < 2 ? 1 : 2 ))" -T "$secs" "$url" 2>&1 \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  [ -n "$tps" ] || { echo "pg-ceiling: pgbench failed for $1" >&2; exit 1; }
  python3 -c "print('ceiling $1 clients=$3 plans_per_s=%d' % round($tps * $4))"
}
run per_plan per_plan.pgbench 1 1
run per_plan per_plan.pgbench 4 1
run batch100 batch100.pgbench 1 100
run batch100 batch100.pgbench 4 100
