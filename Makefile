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

.PHONY: bench-stream bench-model

bench-stream: install  ## live-streaming latency for 1-200 concurrent streams (bench/results/stream.json)
	$(BIN)/python -m bench.stream

bench-model: install  ## model latency, real-time factor, load time and RSS (python -m ml.bench)
	$(BIN)/python -m ml.bench
