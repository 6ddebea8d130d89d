# Harpicoop: `make run` (the whole pipeline on a simulated day) and `make test` (the test suite
# against the real stack). Everything below installs what it needs: a fresh machine with
# Python 3.11, Java 17 and Maven needs no manual step.

include deploy/versions.mk

PYTHON_BOOT ?= python3
VENV        := .venv
PYTHON      := $(VENV)/bin/python
INSTALLED   := $(VENV)/.installed

# BROKERS=3: the local stack as a three-node Kafka cluster (services.stack.brokers); remembered by
# the stack, so later commands need not repeat it. One broker when never given.
ifdef BROKERS
export HARPICOOP_BROKERS := $(BROKERS)
endif

.DEFAULT_GOAL := help
.PHONY: help venv up down status test lint typecheck check run bench faults clean

help:
	@echo "make run      start the stack and the platform, replay a simulated day"
	@echo "make test     run the whole test suite against the real stack"
	@echo "make up       start the local stack (Kafka, registry, PostgreSQL, SMTP, IMAP);"
	@echo "              BROKERS=3: Kafka as a three-broker cluster"
	@echo "make down     stop it"
	@echo "make status   show what is running"
	@echo "make bench    the speed figures side by side (JSON, chart) in bench-results/"
	@echo "make faults   the fault suite on a three-broker stack of its own (SHORT=1: CI's part)"
	@echo "make check    ruff and mypy"

# The virtual environment is rebuilt when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	@test -x $(PYTHON) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(INSTALLED)

up: venv
	$(PYTHON) -m services.stack up

down: venv
	$(PYTHON) -m services.stack down

status: venv
	$(PYTHON) -m services.stack status

# The test session starts the stack when it is not running, and stops it again at the end.
test: venv
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check services tests
	$(VENV)/bin/ruff format --check services tests

typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck

# SPEED: simulated seconds per second (default 360, a day in four minutes) or "fast".
# REPLACE_DIRECTORY=1: the directory sample replaces practitioners loaded from other extracts.
SPEED ?= 360
run: venv
	$(VENV)/bin/harpicoop run $(if $(filter fast,$(SPEED)),--fast,--speed $(SPEED)) \
		$(if $(REPLACE_DIRECTORY),--replace-directory)

bench: up
	$(PYTHON) -m tests.bench

# The fault suite, on a stack of its own (.stack/faults, three brokers, every port shifted by
# 22000: services.faults), beside the developer's stack, removed at the end. SHORT=1: one broker
# and one service killed (CI); KEEP=1: its stack stays up; SCENARIOS="registry smtp": only those.
faults: venv
	$(PYTHON) -m services.faults $(if $(SHORT),--short) $(if $(KEEP),--keep) $(SCENARIOS)

# The stack folder, and PostgreSQL's data if it had to live outside it (/var/lib/harpicoop/...).
clean: venv
	$(PYTHON) -m services.stack clean
