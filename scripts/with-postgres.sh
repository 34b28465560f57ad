#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15: initdb into a temp dir, start on a free port,
# export DATABASE_URL, run "$@", then stop the server and delete the data whatever happened.
# Set BACKSTOP_PGDATA=<dir> to keep the data between runs instead (for pytest --reuse-db).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL 15 server binaries not found in $PGBIN" >&2; exit 1; }

as_pg() {
  # initdb and pg_ctl refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

keep_data=0
if [ -n "${BACKSTOP_PGDATA:-}" ]; then
  DATA=$(realpath -m "$BACKSTOP_PGDATA"); keep_data=1; mkdir -p "$DATA"
else
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/backstop-pg.XXXXXX")
fi
[ "$(id -u)" = 0 ] && chown postgres: "$DATA" && chmod 700 "$DATA"

cleanup() {
  local status=$?
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  [ "$keep_data" = 1 ] || rm -rf "$DATA"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -f "$DATA/PG_VERSION" ]; then
  as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Durability is pointless for a database that is deleted in a minute; these make it fast.
options="-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
# Loaded from the start, so the harnesses that read it (scripts/load/stack.py) need not restart the
# server, which would cut off everything else using it (`make test` runs pytest and the crash matrix
# on one server at once).
[ -f "$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)/pg_stat_statements.so" ] \
  && options="$options -c shared_preload_libraries=pg_stat_statements"
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 30 -o "$options" start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres app 2>/dev/null || true
echo "PostgreSQL 15 on 127.0.0.1:$PORT (data: $DATA)"

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/app"
"$@"
