# Every check the project has: `make test`. Start the local stack first (`make stack-up`) or point
# KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL at running servers.
PY ?= .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: test lint typecheck pytest stack-up stack-down stack-status run install

install:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck:
	$(PY) -m mypy .

# pytest exits 5 when it collects nothing; that is a failure here, as it is for any other exit code.
pytest:
	$(PY) -m pytest

test: lint typecheck pytest

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

stack-status:
	scripts/stack status
