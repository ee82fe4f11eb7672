# Every check the project has: `make test`. Start the local stack first (`make stack-up`) or point
# KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL at running servers.
PY ?= .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: test lint typecheck pytest stack-up stack-down stack-status run install

# The virtualenv, with python3-venv installed from the OS packages when the machine lacks it.
.venv/bin/allegro-backup: pyproject.toml
	python3 -c 'import ensurepip, venv' 2>/dev/null || (apt-get update -q && apt-get install -y -q python3-venv)
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

install: .venv/bin/allegro-backup

# The whole pipeline on the simulator with a demo seller; Ctrl-C stops every process.
run: install
	.venv/bin/allegro-backup up

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
