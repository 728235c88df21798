# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make demo   — runs the product
#   make test   — runs lint, types, layer contracts and the tests
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv

.PHONY: venv test lint demo bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

venv: $(UV)
	$(UV) sync --frozen --quiet

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: venv
	$(VENV)/bin/aftersales demo

bench: venv
	$(VENV)/bin/python -m benchmarks

clean:
	rm -rf .tools $(VENV) .pytest_cache .mypy_cache .ruff_cache
