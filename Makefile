# The setup contract: `make run` serves the app, `make test` checks it. Both install what is
# missing first (scripts/setup.sh), so a fresh clone needs nothing else.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT := $(or $(PORT),5000)

.PHONY: help setup run test e2e bench audit

help:
	@echo "make run    install what is missing, migrate, load the demo data, serve on http://127.0.0.1:$(PORT)"
	@echo "            with the background jobs' worker (e-mail, the daily digest, clean-ups)"
	@echo "make test   install what is missing, run the tests, ruff check and ruff format --check"
	@echo "make e2e    only the browser tests (tests/e2e, Chromium; also part of make test)"
	@echo "make setup  only the install step"
	@echo "make audit  security checks: bandit on crm/, pip-audit on requirements.txt"
	@echo "make bench  one table, each figure against its target: the web pages, the export of"
	@echo "            10,000 rows and the load tests at 100,000 projects (BENCH_PROJECTS=N for"
	@echo "            another size; the database is cached in .bench/), the PDF, an import of 5,000 rows"

setup:
	@bash scripts/setup.sh

# --limit-request-line 8190 (gunicorn's maximum; its default 4094 answered a long search with a
# bare 414): the app refuses addresses over MAX_URL_BYTES (4096) with its own 414 page.
# --no-control-socket: gunicorn's control socket is one per user (~/.gunicorn/gunicorn.ctl),
# so two `make run` on one machine would take it from each other; nothing here uses it.
# The job queue's worker (`crm worker`: e-mail, the daily digest, clean-ups) runs in the
# background next to gunicorn, on the same settings; when gunicorn ends (Ctrl-C reaches both,
# or it fails to start) the trap stops the worker with SIGINT, letting its running job finish.
run: setup
	@mkdir -p "$${CRM_INSTANCE_PATH:-instance}"
	$(FLASK) db upgrade
	$(FLASK) crm demo
	@echo "Serving the CRM on http://127.0.0.1:$(PORT), with its background jobs (Ctrl-C stops both)"
	$(FLASK) crm worker & worker=$$!; \
	trap 'kill -INT $$worker 2>/dev/null; wait $$worker' EXIT; \
	$(BIN)/gunicorn --workers 2 --bind 127.0.0.1:$(PORT) --access-logfile - \
		--no-control-socket --limit-request-line 8190 wsgi:app

test: setup
	$(BIN)/pytest
	$(BIN)/ruff check
	$(BIN)/ruff format --check

# The browser tests alone: a real server and Debian's Chromium (tests/e2e/conftest.py).
# Screenshots in test-artifacts/screenshots/<date-time>/.
e2e: setup
	$(BIN)/pytest tests/e2e

# One table, each figure a median with its target and whether it is met (scripts/bench_web.py,
# a few minutes once the database is cached). It runs scripts/bench_pdf.py --json (a fresh demo,
# its richest dossier rendered 10 times in the app's helper process: median, peak memory) and
# scripts/bench_ledger.py 5000 --runs 3 --json (the import on 3 fresh databases); then
# `crm generate` builds BENCH_PROJECTS projects once into .bench/ (reused), and gunicorn with 2
# workers is timed page by page, under 16 connections against a bare Flask app (3 rounds), and
# for the export of ~10,000 rows. CRM_BENCH_DATABASE_URL: all of it on PostgreSQL (the PDF aside).
bench: setup
	$(BIN)/python scripts/bench_web.py --projects $(or $(BENCH_PROJECTS),100000)

# Security checks: bandit's static analysis of crm/ (its skips, with reasons, in pyproject.toml),
# then pip-audit on the pinned requirements. pip-audit needs PyPI's vulnerability data: when that
# cannot be reached it warns and passes; a known vulnerability fails (scripts/pip_audit.py).
audit: setup
	$(BIN)/bandit -q -r crm -c pyproject.toml
	$(BIN)/python scripts/pip_audit.py requirements.txt
