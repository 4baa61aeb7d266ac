VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTHON ?= python3

.PHONY: install run test lint worker beat demo clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --no-input
	PUBLIC_URL=$${PUBLIC_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py demo_setup
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

worker: install
	$(VENV)/bin/celery -A agentops_site worker --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A agentops_site beat --loglevel=INFO

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
