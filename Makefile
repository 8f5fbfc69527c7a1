# The two commands a fresh clone needs: `make run` and `make test` (both install first).
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test vendor clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-train.txt requirements-mic.txt pyproject.toml
	@scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -r requirements-train.txt
	@$(BIN)/python -m pip install --quiet -r requirements-mic.txt 2>/dev/null \
		|| echo "note: pyaudio not installed (needs PortAudio headers); 'mood-mirror stream --mic' will say what to install"
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: install
	$(BIN)/python -m devtools.devstack

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

vendor: install
	$(BIN)/python scripts/vendor.py

clean:
	rm -rf $(VENV) var .pytest_cache

.PHONY: bench-stream bench-model

bench-stream: install  ## live-streaming latency for 1, 10, 50, 100, 150 and 200 concurrent streams (bench/results/stream.json)
	$(BIN)/python -m bench.stream

bench-model: install  ## model latency, real-time factor, load time and RSS (bench/results/model.json)
	$(BIN)/python -m ml.bench --save

.PHONY: fuzz

fuzz: install  ## long schemathesis run over every operation (FUZZ_EXAMPLES per operation and mode, FUZZ_SEED)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest tests/test_fuzz.py --timeout=3600

.PHONY: bench-api bench-uploads

bench-uploads: install  ## another user's GET /api/sessions while 3 clients post a MOV with a 16000x16000 video frame (bench/results/uploads.json)
	$(BIN)/python -m bench.uploads

bench-api: install  ## REST load: ingest, analytics, mixed; p50/p99, rps, acknowledged writes found (bench/results/api.json)
	$(BIN)/python -m bench.api
