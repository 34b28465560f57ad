#!/usr/bin/env bash
# The whole suite, as CI runs it. Called by `make test` inside scripts/with-postgres.sh.
set -euo pipefail
export DJANGO_SETTINGS_MODULE=tests.settings
PY=.venv/bin/python

step() { printf '\n== %s\n' "$*"; }

step "ruff"
.venv/bin/ruff check .
step "manage.py check"
$PY manage.py check --fail-level WARNING
step "makemigrations --check"
$PY manage.py makemigrations --check --dry-run
step "collectstatic"
$PY manage.py collectstatic --noinput -v 0

# The crash matrix's short form runs beside pytest, on a PostgreSQL server of its own (it restarts
# its server to load pg_stat_statements, which pytest's connections would not survive): its rows
# mostly wait for the nets (webhook retries, the sweep's lease, cron's ticks), so the two fit on two
# cores in less time than one after the other. Its report is printed when pytest is done.
# The whole matrix is `make crash-matrix`; this is its CI form (docs/crash-matrix.md).
mkdir -p var
matrix_log=var/crash-matrix-short.log
setsid env -u DATABASE_URL $PY scripts/crash_matrix.py --short >"$matrix_log" 2>&1 &
matrix=$!
# If this script is stopped early, the matrix (its own process group) stops with it.
trap 'kill -TERM -- -$matrix 2>/dev/null || true' EXIT

step "migrations, once, on a fresh database: the template of each pytest worker's test database"
# CI and `make test` always run the real migrations on a fresh database; each worker's database
# is then a copy of this one (tests/settings.py), not a second run of dj-stripe's migrations.
template=backstop_test_template
$PY - "$DATABASE_URL" "$template" <<'PY'
import sys

import psycopg

url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{name}"')
    db.execute(f'CREATE DATABASE "{name}"')
PY
DATABASE_URL="${DATABASE_URL%/*}/$template" $PY manage.py migrate --noinput -v 0
export BACKSTOP_TEST_DB_TEMPLATE=$template

step "pytest (${PYTEST_WORKERS:=2} workers, each with its own test database), the crash matrix's short form beside it"
# Whole files per worker (module-scoped fixtures such as the demo's stack stay on one worker), in
# the order tests/conftest.py puts them: the longest files first.
pytest_status=0
$PY -m pytest --create-db -n "$PYTEST_WORKERS" --dist loadfile --no-loadscope-reorder "$@" || pytest_status=$?

step "crash matrix, short form (every named crash point once, on the real stack; $matrix_log)"
matrix_status=0
wait "$matrix" || matrix_status=$?
cat "$matrix_log"
trap - EXIT
[ "$pytest_status" = 0 ] || { echo "pytest failed (exit $pytest_status)"; exit "$pytest_status"; }
[ "$matrix_status" = 0 ] || { echo "the crash matrix failed (exit $matrix_status)"; exit "$matrix_status"; }
