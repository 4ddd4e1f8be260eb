# Two commands matter: `make run` (try the gateway) and `make test` (run every check).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make run` uses the defaults (./dakghar.db, data in .), so every `dakghar` command run from
# this folder talks to the same gateway with no variables to set (API.md, "Command line").

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml sdk/python/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,postgres,redis]'
	$(BIN)/python -m pip install -q -e sdk/python
	touch $@ $(VENV)/.installed

## run: create .venv, install, start the gateway in sandbox mode (prints URL and a demo key)
run: $(VENV)/.installed
	$(BIN)/dakghar serve --demo

## test: install what tests need, then lint, type-check and run the whole suite
test: $(VENV)/.installed-test lint typecheck pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench sdk examples
	$(BIN)/ruff format --check src tests bench sdk examples

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/mypy sdk/python/src

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest

## bench: run every benchmark script under bench/ (prints figures; not a test)
bench: $(VENV)/.installed-test
	@for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -f dakghar.db dakghar.db-wal dakghar.db-shm dakghar.secret dakghar-demo.key \
	  dakghar-state.json dakghar-state.tmp dakghar.pid dnd.bin
	rm -rf fleet
