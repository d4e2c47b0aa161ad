# Regulars: `make run` for the product with demo data, `make test` for the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install install-dev run worker test bench lint format messages clean

help:
	@echo "make run          install, migrate, seed the demo and start web + Celery worker/beat"
	@echo "make test         install dev dependencies and run the whole suite"
	@echo "make bench        the benchmarks on PostgreSQL (BENCH_DATABASE_URL), written to BENCHMARKS.md"
	@echo "make lint         ruff (lint and format check) and makemigrations --check"
	@echo "make messages     refresh the translation catalogues (needs GNU gettext)"

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed: see README.md"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced-main: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --no-dev --python $(PYTHON)
	@touch $@

$(VENV)/.synced-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@ $(VENV)/.synced-main

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed: see README.md"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.synced-main node_modules/.package-lock.json

install-dev: $(VENV)/.synced-dev node_modules/.package-lock.json

# The links the demo prints, and the emails it sends, point at the server this starts.
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo
	@$(MANAGE) rewards_link --merchant demo-store --email chloe.nasser.3@demo-customer.test
	@echo "Celery worker with beat logs to var/celery.log. Press Ctrl-C to stop both."
	@trap 'kill 0' EXIT INT TERM; \
	$(VENV)/bin/celery -A config worker -B --concurrency=1 --loglevel=INFO >var/celery.log 2>&1 & \
	$(MANAGE) runserver $(HOST):$(PORT)

worker: install
	$(VENV)/bin/celery -A config worker -B --concurrency=1 --loglevel=INFO

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The first run loads 1M customers and 10M orders into the bench database (about 25 min);
# later runs reuse them. BENCH_ARGS="--only pages --rounds 5" and so on: python -m bench -h.
bench: install-dev
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -qq wrk; } \
		|| { echo "wrk (the HTTP load generator) is needed: apt-get install wrk"; exit 1; }
	$(PY) -m bench $(BENCH_ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(MANAGE) makemigrations --check --dry-run

format: install-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# makemessages reads the Python code and the Django templates; pybabel the Jinja2 ones
# (jinja2/, mapped in babel.cfg). makemessages keeps what it no longer finds as obsolete
# entries, translations and all; msgmerge then takes in the msgids of both and finds the
# Jinja2 templates' translations among those; whatever is still obsolete then goes.
JINJA2_KEYWORDS := _ gettext ngettext:1,2 pgettext:1c,2 npgettext:1c,2,3
messages: install-dev
	$(MANAGE) makemessages --all --ignore=node_modules --ignore=.venv --ignore=.tools --ignore=var --keep-pot
	$(VENV)/bin/pybabel --quiet extract --no-default-keywords $(addprefix -k ,$(JINJA2_KEYWORDS)) \
		-F babel.cfg -o var/jinja2.pot jinja2
	msgcat --use-first -o var/messages.pot locale/django.pot var/jinja2.pot
	for po in locale/*/LC_MESSAGES/django.po; do \
		msgmerge --quiet --previous --update --backup=none $$po var/messages.pot \
			&& msgattrib --no-obsolete -o $$po $$po || exit 1; \
	done
	rm -f locale/django.pot var/jinja2.pot var/messages.pot
	$(MANAGE) compilemessages --ignore=node_modules --ignore=.venv --ignore=.tools

clean:
	rm -rf $(VENV) $(TOOLS) node_modules var
