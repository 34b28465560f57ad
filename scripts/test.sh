#!/usr/bin/env bash
# The whole suite, as CI runs it. Called by `make test` inside scripts/with-postgres.sh.
set -euo pipefail
export DJANGO_SETTINGS_MODULE=tests.settings
PY=.venv/bin/python

step() { printf '\n== %s\n' "$*"; }
mkdir -p var

# CI and `make test` always run the real migrations on a fresh database, once: each pytest
# worker's database and each crash-matrix lane's is then a copy of this one (CREATE DATABASE ...
# TEMPLATE; tests/settings.py), not another run of dj-stripe's migrations. They run while pytest
# starts and collects; the first database copy waits for $ready (tests/conftest.py).
template=backstop_test_template
$PY - "$DATABASE_URL" "$template" <<'PY'
import sys

import psycopg

url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{name}"')
    db.execute(f'CREATE DATABASE "{name}"')
PY
migrate_log=var/test-migrate.log
ready=$PWD/var/test-template.ready
rm -f "$ready" "$ready.tmp"
export MIGRATE_URL="${DATABASE_URL%/*}/$template" PY ready migrate_log
# Each job below is its own process group (setsid), so that stopping this script stops all of it.
# The system checks are the checks job's (below): skipped here, on the path everything waits for.
setsid bash -c '
  status=0
  DATABASE_URL=$MIGRATE_URL $PY manage.py migrate --noinput -v 0 --skip-checks >"$migrate_log" 2>&1 || status=$?
  # Written whole, then moved into place: a reader never sees half of it.
  if [ "$status" = 0 ]; then echo ok >"$ready.tmp"; else echo "exit $status" >"$ready.tmp"; fi
  mv "$ready.tmp" "$ready"' &
jobs_started=($!)
stop_all() { for pid in "${jobs_started[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done; }
trap stop_all EXIT
export BACKSTOP_TEST_DB_TEMPLATE=$template BACKSTOP_TEST_DB_TEMPLATE_READY=$ready

# The servers pytest and the crash matrix start serve the collected files: collected first, once.
step "collectstatic"
$PY manage.py collectstatic --noinput -v 0

# The checks run beside pytest, niced (nothing waits for them); their output is printed after it.
checks_log=var/test-checks.log
export -f step
nice -n 10 bash -c '
  set -e
  step "ruff"; .venv/bin/ruff check .
  step "manage.py check"; $PY manage.py check --fail-level WARNING
  step "makemigrations --check"; $PY manage.py makemigrations --check --dry-run' >"$checks_log" 2>&1 &
checks=$!

# The crash matrix's short form runs beside pytest on the same server: its rows mostly wait for
# the nets (webhook retries, the sweep's lease, cron's ticks), so the two fit on two cores in less
# time than one after the other. Static files are collected above; collecting them again would
# rewrite them under pytest's servers. Its report is printed once pytest is done. Niced: its rows
# wait up to 100 s for the nets, while some tests wait 5 s for a webhook, so when the cores are
# short pytest goes first. The whole matrix is `make crash-matrix`; this is its CI form
# (docs/crash-matrix.md).
matrix_log=var/crash-matrix-short.log
export template
setsid bash -c '
  while [ ! -e "$ready" ]; do sleep 0.5; done
  [ "$(cat "$ready")" = ok ] || { echo "not run: the template database'"'"'s migrations failed"; exit 1; }
  BACKSTOP_STATIC_COLLECTED=1 exec nice -n 5 $PY scripts/crash_matrix.py --short --template "$template"' \
  >"$matrix_log" 2>&1 &
matrix=$!
jobs_started+=("$matrix")

step "pytest (${PYTEST_WORKERS:=3} workers, each with its own test database), the crash matrix's short form beside it"
# Whole files per worker (module-scoped fixtures such as the demo's stack stay on one worker), in
# the order tests/conftest.py puts them: the longest files first.
pytest_status=0
$PY -m pytest --create-db -n "$PYTEST_WORKERS" --dist loadfile --no-loadscope-reorder "$@" || pytest_status=$?

checks_status=0
wait "$checks" || checks_status=$?
cat "$checks_log"

step "migrations, on a fresh database: the template of every test database"
while [ ! -e "$ready" ]; do sleep 0.5; done
cat "$migrate_log"
migrate_answer=$(cat "$ready")

step "crash matrix, short form (every named crash point once, on the real stack; $matrix_log)"
matrix_status=0
wait "$matrix" || matrix_status=$?
cat "$matrix_log"
trap - EXIT
[ "$migrate_answer" = ok ] || { echo "migrate failed ($migrate_answer)"; exit 1; }
[ "$checks_status" = 0 ] || { echo "the checks failed (exit $checks_status)"; exit "$checks_status"; }
[ "$pytest_status" = 0 ] || { echo "pytest failed (exit $pytest_status)"; exit "$pytest_status"; }
[ "$matrix_status" = 0 ] || { echo "the crash matrix failed (exit $matrix_status)"; exit "$matrix_status"; }
