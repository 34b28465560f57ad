#!/usr/bin/env bash
# The whole suite, as CI runs it. Called by `make test` inside scripts/with-postgres.sh.
set -euo pipefail
export DJANGO_SETTINGS_MODULE=tests.settings
PY=.venv/bin/python

step() { printf '\n== %s\n' "$*"; }

# CI and `make test` always run the real migrations on a fresh database, once: each pytest
# worker's database and each crash-matrix lane's is then a copy of this one (CREATE DATABASE ...
# TEMPLATE; tests/settings.py), not another run of dj-stripe's migrations. They run on one core
# while the checks below run on the other.
template=backstop_test_template
$PY - "$DATABASE_URL" "$template" <<'PY'
import sys

import psycopg

url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{name}"')
    db.execute(f'CREATE DATABASE "{name}"')
PY
migrate_log=$(mktemp)
DATABASE_URL="${DATABASE_URL%/*}/$template" $PY manage.py migrate --noinput -v 0 >"$migrate_log" 2>&1 &
migrating=$!
trap 'kill "$migrating" 2>/dev/null || true' EXIT

step "ruff"
.venv/bin/ruff check .
step "manage.py check"
$PY manage.py check --fail-level WARNING
step "makemigrations --check"
$PY manage.py makemigrations --check --dry-run
step "collectstatic"
$PY manage.py collectstatic --noinput -v 0

step "migrations, on a fresh database: the template of every test database"
migrate_status=0
wait "$migrating" || migrate_status=$?
cat "$migrate_log"; rm -f "$migrate_log"
[ "$migrate_status" = 0 ] || { echo "migrate failed (exit $migrate_status)"; exit "$migrate_status"; }
export BACKSTOP_TEST_DB_TEMPLATE=$template

# The crash matrix's short form runs beside pytest on the same server: its rows mostly wait for
# the nets (webhook retries, the sweep's lease, cron's ticks), so the two fit on two cores in less
# time than one after the other. Static files are collected above; collecting them again would
# rewrite them under pytest's servers. Its report is printed once pytest is done.
# The whole matrix is `make crash-matrix`; this is its CI form (docs/crash-matrix.md).
mkdir -p var
matrix_log=var/crash-matrix-short.log
# Niced: its rows wait up to 100 s for the nets, while some tests wait 5 s for a webhook, so when the
# cores are short pytest goes first.
BACKSTOP_STATIC_COLLECTED=1 setsid nice -n 5 $PY scripts/crash_matrix.py --short --template "$template" >"$matrix_log" 2>&1 &
matrix=$!
# If this script is stopped early, the matrix (its own process group) stops with it.
trap 'kill -TERM -- -$matrix 2>/dev/null || true' EXIT

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
