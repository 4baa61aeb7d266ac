VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTHON ?= python3

.PHONY: install run dev demo-setup test test-fast lint worker beat demo clean bench reliability

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet -e sdk
	touch $@

install: $(VENV)/.installed

# A key of this checkout's own, made once: DEBUG off refuses the development key.
var/secret_key:
	mkdir -p var
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

# Production serving on loopback: gunicorn + WhiteNoise with DEBUG off, a Celery worker and beat
# on the directory broker (or CELERY_BROKER_URL), all three as one honcho process group. Plain
# HTTP on 127.0.0.1, so no TLS redirect and no Secure-only cookies.
RUN_ENV = DJANGO_DEBUG=0 SECRET_KEY="$${SECRET_KEY:-$$(cat var/secret_key)}" \
	SECURE_SSL_REDIRECT=$${SECURE_SSL_REDIRECT:-0} SECURE_COOKIES=$${SECURE_COOKIES:-0} \
	SECURE_HSTS_SECONDS=$${SECURE_HSTS_SECONDS:-0}

# The demo user has a known password: demo_setup runs only with DEBUG, here for itself alone
# (the server it prints is on loopback).
demo-setup:
	$(PY) manage.py migrate --no-input
	DJANGO_DEBUG=1 PUBLIC_URL=$${PUBLIC_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py demo_setup

run: install var/secret_key demo-setup
	$(RUN_ENV) $(PY) manage.py collectstatic --no-input -v 0
	$(RUN_ENV) WEB_BIND=127.0.0.1:$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho --env /dev/null -f Procfile start

# For developers: runserver (DEBUG, autoreload) with the same worker and beat.
dev: install demo-setup
	WEB_BIND=127.0.0.1:$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho --env /dev/null -f Procfile.dev start

test: install
	$(PY) -m pytest

# The inner loop: everything but the system tests (subprocesses, Chromium, real workers).
test-fast: install
	$(PY) -m pytest -m "not system"

# Fuzzing (schemathesis), faults (server, Postgres, agent killed), load: servers of its own
# (a private Postgres cluster, gunicorn). RELIABILITY_LOAD_SECONDS=60 for the full load figure.
reliability: install
	$(PY) -m pytest -p no:cacheprovider reliability/

lint: install
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

worker: install
	$(VENV)/bin/celery -A agentops_site worker --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A agentops_site beat --loglevel=INFO

# Benchmarks (BENCHMARKS.md): Postgres at BENCH_PG, a Redis db of their own for the broker run.
# Each script prints JSON lines; they are collected in bench/results/latest.jsonl.
BENCH_PG ?= postgres://postgres@127.0.0.1:5432
BENCH_BROKER ?= redis://127.0.0.1:6379/7
bench: install
	mkdir -p bench/results
	DJANGO_DEBUG=0 SECRET_KEY=bench-collectstatic-only-0123456789abcdef0123456789abcdef \
		$(PY) manage.py collectstatic --no-input -v 0
	BENCH_PG=$(BENCH_PG) $(PY) bench/generate.py | tee bench/results/latest.jsonl
	BENCH_PG=$(BENCH_PG) $(PY) bench/rollups.py | tee -a bench/results/latest.jsonl
	BENCH_PG=$(BENCH_PG) $(PY) bench/pages.py | tee -a bench/results/latest.jsonl
	BENCH_PG=$(BENCH_PG) $(PY) bench/export.py | tee -a bench/results/latest.jsonl
	BENCH_PG=$(BENCH_PG) $(PY) bench/ingest.py --broker $(BENCH_BROKER) | tee -a bench/results/latest.jsonl
	BENCH_PG=$(BENCH_PG) $(PY) bench/ingest.py --batches 30 | tee -a bench/results/latest.jsonl
	if [ -f bench/sdk_record.py ]; then $(PY) bench/sdk_record.py | tee -a bench/results/latest.jsonl; fi

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
