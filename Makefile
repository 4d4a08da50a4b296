# Two commands do all the set-up: `make run` (the app) and `make test` (the tests).
# Each creates .venv if missing and installs only when a requirements file changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# converted in the background once the app is serving, so a first backbone comparison does not wait for them
# (`make run PREPARE_LATER=` skips it)
PREPARE_LATER ?= efficientnet_lite1,efficientnet_lite2

.PHONY: run test prepare benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt requirements-cluster.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

prepare: $(VENV)/.runtime-installed
	$(BIN)/python -m core prepare

run: prepare
	@if [ -n "$(PREPARE_LATER)" ]; then \
		(sleep 5; nice -n 19 $(BIN)/python -m core prepare --models $(PREPARE_LATER)) > $(VENV)/prepare-later.log 2>&1 & \
	fi
	$(BIN)/streamlit run serve.py --server.port $(PORT)

test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 3 -p no:randomly tests

clean:
	rm -rf $(VENV)
