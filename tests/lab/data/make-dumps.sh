#!/bin/bash
# Makes engine.dump and dwh.dump here once, with the real pg_dump, as engine-backup runs it
# (custom format, default compression, `-E UTF8 --disable-dollar-quoting --disable-triggers`)
# to a pipe, so the table of contents carries no data offsets and pg_restore finds each data
# block by reading on. See README.md. Needs root and PostgreSQL (initdb, pg_ctl, psql, pg_dump).
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
work=$(mktemp -d /tmp/he-lab-dumps.XXXXXX)
chmod 755 "$work"
trap 'runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
install -d -o postgres "$work/pg" "$work/sock"
runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres -E UTF8 \
  --locale=C.UTF-8 --no-sync >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -w -l "$work/sock/log" \
  -o "-k $work/sock -c listen_addresses=''" start >/dev/null
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/sock" "$@"; }
dump() { "$pg_bin/pg_dump" -h "$work/sock" -U "$1" -E UTF8 --disable-dollar-quoting \
  --disable-triggers --format=custom "$1" | cat >"$out/$2"; }

psql -U postgres -d postgres \
  -c "CREATE ROLE engine LOGIN" \
  -c "CREATE DATABASE engine OWNER engine TEMPLATE template0 ENCODING 'UTF8'" \
  -c "CREATE ROLE ovirt_engine_history LOGIN" \
  -c "CREATE DATABASE ovirt_engine_history OWNER ovirt_engine_history TEMPLATE template0 ENCODING 'UTF8'"
# The lab's engine state: one JSON row, written by the lab into this table's data block.
psql -U engine -d engine -c "CREATE TABLE he_lab_engine_state (state json NOT NULL)"
psql -U ovirt_engine_history -d ovirt_engine_history <<'SQL'
CREATE TABLE history_configuration (var_name varchar(50) PRIMARY KEY, var_value varchar(255),
  var_datetime timestamptz);
INSERT INTO history_configuration VALUES ('firstSync', 'false', '2016-12-02 00:00:00+00'),
  ('lastDayAggr', NULL, '2016-12-02 00:00:00+00');
SQL
dump engine engine.dump
dump ovirt_engine_history dwh.dump
"$pg_bin/pg_restore" -l "$out/engine.dump" | grep "TABLE DATA"
