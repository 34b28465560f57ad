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
step "pytest"
# --create-db: CI and `make test` always run the real migrations on a fresh database.
$PY -m pytest --create-db "$@"
step "crash matrix, short form (every named crash point once, on the real stack)"
# The whole matrix is `make crash-matrix`; this is its CI form (docs/crash-matrix.md).
$PY scripts/crash_matrix.py --short
