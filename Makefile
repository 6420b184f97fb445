# Rabta: `make run` serves a demo on 127.0.0.1:8000, `make test` runs the whole suite.
# Both set everything up on a fresh machine (a .venv beside this file).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CATALOGS := $(wildcard locales/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
# The agent console's own gettext domain (English and Urdu), beside the bot's `messages`.
AGENT_CATALOGS := $(wildcard locales/agent/*/LC_MESSAGES/agent.po)
AGENT_COMPILED := $(AGENT_CATALOGS:.po=.mo)

.PHONY: run test test-fast lint format messages compile-messages bench clean help \
	agent-messages compile-agent-messages chromium

help:
	@echo "make run       serve a seeded demo on http://127.0.0.1:8000 (PORT=8001 for another port)"
	@echo "make test      the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)"
	@echo "make test-fast the suite without the scenarios marked slow, stopping at the first failure"
	@echo "make lint      ruff and mypy"
	@echo "make format    ruff format and ruff check --fix"
	@echo "make messages  extract, update and compile the translation catalogs"
	@echo "make agent-messages  the same for the agent console's catalogs (English and Urdu)"
	@echo "make bench     Rabta vs a bare-ASGI baseline under wrk (PostgreSQL + Redis on loopback)"
	@echo "make chromium  Debian's Chromium for the console's browser tests (installs as root)"
	@echo "make clean     remove .venv, var/ (the demo database and outbox) and the tool caches"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po | $(RUN_STAMP)
	$(BIN)/pybabel compile --domain messages -i $< -o $@ -l $*

compile-messages: $(COMPILED)

locales/agent/%/LC_MESSAGES/agent.mo: locales/agent/%/LC_MESSAGES/agent.po | $(RUN_STAMP)
	$(BIN)/pybabel compile --domain agent -i $< -o $@ -l $*

compile-agent-messages: $(AGENT_COMPILED)

# Extract the console's strings (templates/agent, api/agent) and update its en and ur catalogs.
agent-messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F api/agent/babel.cfg --no-default-keywords -k _ -k N_ \
		--sort-output --project="Rabta console" --version=0.1.0 --copyright-holder=Rabta \
		-o locales/agent/agent.pot .
	$(BIN)/pybabel update -i locales/agent/agent.pot -d locales/agent -D agent \
		--no-fuzzy-matching --ignore-obsolete
	$(MAKE) compile-agent-messages

# The console's browser tests drive Debian's Chromium; without it (and without root to install
# it) they are skipped with that reason.
chromium:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "chromium is not installed (needs root): the browser tests will be skipped"

# `make run PORT=8001` when 8000 is taken.
PORT ?= 8000

run: $(RUN_STAMP) compile-messages compile-agent-messages
	$(BIN)/rabta serve --demo --port $(PORT)

test: $(DEV_STAMP) compile-messages compile-agent-messages chromium
	$(BIN)/pytest

test-fast: $(DEV_STAMP) compile-messages compile-agent-messages
	$(BIN)/pytest -m "not slow" -x -q

# Installs what it needs (wrk from Debian, py-spy and psutil into .venv), seeds the rabta_bench
# database once, writes docs/performance.md. BENCH_ARGS=--quick for a smoke run.
bench: $(RUN_STAMP) compile-messages
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	@test -x $(BIN)/py-spy && $(BIN)/python -c "import psutil" 2>/dev/null \
		|| $(BIN)/pip install --quiet py-spy psutil
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k pgettext:1c,2 --sort-output --project=Rabta \
		--copyright-holder=Rabta -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching \
		--ignore-obsolete
	$(BIN)/python -m bot.catalogs fix-headers
	$(MAKE) compile-messages

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
