#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL is running and reachable over TCP with
# trust auth, then prints the DATABASE_URL the PostgreSQL tests use:
#
#   export DATABASE_URL="$(bash .ci/postgres.sh)"
#
# Only the URL goes to stdout; everything else goes to stderr. Installs
# PostgreSQL (Debian's package) only when the machine has none.
set -euo pipefail

host=127.0.0.1
port=5432
url="postgres://postgres@${host}:${port}/postgres"

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "no PostgreSQL on this machine; installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba="/etc/postgresql/${version}/main/pg_hba.conf"
if ! grep -Eq "^host[[:space:]]+all[[:space:]]+all[[:space:]]+${host}/32[[:space:]]+trust" "$hba"; then
  # A fresh install asks for passwords over TCP; the tests connect as
  # postgres without one, as on the machines this project runs on.
  log "allowing trust auth for ${host} in ${hba}"
  sed -i "1i host all all ${host}/32 trust" "$hba"
  if pg_isready -q -h "$host" -p "$port"; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
  fi
fi

if ! pg_isready -q -h "$host" -p "$port"; then
  log "starting PostgreSQL ${version}"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
fi
for _ in $(seq 1 60); do
  pg_isready -q -h "$host" -p "$port" && break
  sleep 1
done
if ! pg_isready -q -h "$host" -p "$port"; then
  log "PostgreSQL did not become ready on ${host}:${port}"
  exit 1
fi
if ! psql -X -q -d "$url" -c 'SELECT 1' >/dev/null 2>&1; then
  log "PostgreSQL is up but ${url} does not accept connections"
  exit 1
fi
echo "$url"
