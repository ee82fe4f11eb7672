# Every check the project has: `make test` (scripts/test: brings up Kafka and PostgreSQL when needed and
# stops what it started). `make check` runs the same checks against servers that already answer.
PY ?= .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: test check lint typecheck pytest stack-up stack-down stack-status run install

# The virtualenv, with python3-venv installed from the OS packages when the machine lacks it.
.venv/bin/allegro-backup: pyproject.toml constraints.txt
	python3 -c 'import ensurepip, venv' 2>/dev/null || (apt-get update -q && apt-get install -y -q python3-venv)
	test -x .venv/bin/python || python3 -m venv .venv
	@echo "Installing the virtualenv from constraints.txt (about a minute the first time)..."
	.venv/bin/pip install -q -c constraints.txt -e '.[dev]'
	# a checkout is a development environment: its processes may use the development secrets
	test -e .env || echo ENVIRONMENT=development > .env
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
# The coverage report ends with the TOTAL line; no threshold fails the run.
pytest:
	$(PY) -m pytest --cov --cov-report=term

check: lint typecheck pytest

test:
	scripts/test

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

stack-status:
	scripts/stack status
