# The two commands a newcomer runs: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PG_BIN := /usr/lib/postgresql/15/bin

.PHONY: demo test test-fast lint bench-emulator firedrill load chaos crash-matrix interleavings fuzz clean

# uv installs the same pinned requirements as pip, from the same PyPI, in a fifth of the time: it
# downloads in parallel and compiles the bytecode on both cores (pip: 25 s, uv: 5 s on a fresh
# venv). If uv cannot be had or fails, pip does it as before.
UV_VERSION := 0.13.9
define pip_install
	( $(VENV)/bin/pip install --disable-pip-version-check -q uv==$(UV_VERSION) && \
	  $(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --compile-bytecode -r $(1) ) || \
	{ echo "uv could not install $(1); installing it with pip"; \
	  $(VENV)/bin/pip install --disable-pip-version-check -q -r $(1); }
endef

$(VENV)/.runtime: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(call pip_install,requirements.txt)
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(call pip_install,requirements-dev.txt)
	touch $@

# System packages the tests need, installed only when missing.
system-deps:
	@missing=""; \
	[ -x $(PG_BIN)/initdb ] || missing="$$missing postgresql-15"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing from apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(VENV)/.runtime
	$(VENV)/bin/python scripts/demo.py

test: $(VENV)/.dev system-deps
	scripts/with-postgres.sh scripts/test.sh $(PYTEST_ARGS)

# Local loop: keeps the test database (and its migrations) between runs.
test-fast: $(VENV)/.dev
	BACKSTOP_PGDATA=var/pgdata-test scripts/with-postgres.sh \
	  env DJANGO_SETTINGS_MODULE=tests.settings $(VENV)/bin/python -m pytest --reuse-db $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

bench-emulator: $(VENV)/.dev
	$(VENV)/bin/python scripts/bench_emulator.py

# Every fire drill against a fresh demo stack on free ports, started and stopped around it.
firedrill: $(VENV)/.runtime
	$(VENV)/bin/python scripts/firedrill.py $(FIREDRILL_ARGS)

# Customers from locust against the real stack on a throwaway PostgreSQL; a table per level
# (docs/performance.md). LOAD_ARGS="--levels 1,10,25 --duration 30" and more: see --help.
load: $(VENV)/.dev
	scripts/with-postgres.sh $(VENV)/bin/python scripts/load/run.py $(LOAD_ARGS)

# The same stack while gunicorn workers, gunicorn and qcluster are SIGKILLed and Stripe and its
# webhooks misbehave; reports what converged and which net caught it (docs/chaos.md).
# CHAOS_ARGS="--customers 50 --duration 150 --seed 1" and more: see --help.
chaos: $(VENV)/.dev
	scripts/with-postgres.sh $(VENV)/bin/python scripts/load/chaos.py $(CHAOS_ARGS)

# Every actor of the money path interleaved at random, invariants after each step
# (tests/interleavings). The suite runs 8 examples; this runs INTERLEAVINGS_EXAMPLES (2000).
INTERLEAVINGS_EXAMPLES ?= 2000
interleavings: $(VENV)/.dev
	@mkdir -p var; rm -f var/interleavings.txt
	INTERLEAVINGS_EXAMPLES=$(INTERLEAVINGS_EXAMPLES) INTERLEAVINGS_REPORT=var/interleavings.txt \
	  scripts/with-postgres.sh env DJANGO_SETTINGS_MODULE=tests.settings $(VENV)/bin/python -m pytest -q \
	  -p no:cacheprovider -p no:logging tests/interleavings; status=$$?; cat var/interleavings.txt; exit $$status

# Every named crash point (config/failpoints.py) SIGKILLs its process once during a real purchase;
# one row per point: reached, converged, which net finished it. CRASH_MATRIX_ARGS="--short" for CI.
crash-matrix: $(VENV)/.dev
	scripts/with-postgres.sh $(VENV)/bin/python scripts/crash_matrix.py $(CRASH_MATRIX_ARGS)

# Property-based fuzzing of every form, the status API and the Stripe and ESP webhooks (tests/fuzz/),
# with many more examples than the normal suite's 25 per property: HYPOTHESIS_PROFILE=long (2,000).
fuzz: $(VENV)/.dev
	scripts/with-postgres.sh env DJANGO_SETTINGS_MODULE=tests.settings HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-long} \
	  $(VENV)/bin/python -m pytest tests/fuzz --hypothesis-show-statistics $(PYTEST_ARGS)

clean:
	rm -rf var staticfiles
