# The two commands a fresh clone needs: `make run` and `make test` (both install first).
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test vendor clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

run: install
	$(BIN)/python -m app.devstack

test: install
	$(BIN)/python -m pytest

vendor: install
	$(BIN)/python scripts/vendor.py

clean:
	rm -rf $(VENV) var .pytest_cache
