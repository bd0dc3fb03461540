# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= config.toml

.PHONY: run test lint install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/branchbot init --demo --config $(CONFIG)
	@echo ""
	@echo "命令行工具 branchbot 在 $(BIN)/ 中：另开一个终端，在本目录运行 $(BIN)/branchbot --help，"
	@echo "或先运行 source $(BIN)/activate，之后直接用 branchbot …（如 branchbot members list）。"
	@echo ""
	$(BIN)/branchbot serve --config $(CONFIG)

test: install-test
	$(BIN)/python -m pytest

# The checks .ci/run runs before the suite: lint, format, types (mypy --strict on bot, handlers,
# quizzes, scheduler; configured in pyproject.toml), the layer contracts (.importlinter) and dead
# code (vulture, configured in pyproject.toml).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/handler.py
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/push.py

clean:
	rm -rf $(VENV) data *.egg-info .pytest_cache
