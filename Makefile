# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench default-model system-deps clean
SYSTEM_PACKAGES := ffmpeg libsndfile1 chromium chromium-driver

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cpu,dev]'
	touch $(STAMP)

## run: install and serve the shipped default model on $(HOST):$(PORT)
run: $(STAMP)
	$(BIN)/voiceid serve --model models/default --host $(HOST) --port $(PORT)

## system-deps: Debian packages the tests use (ffmpeg for m4a/webm, Chromium for the page)
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "not installed (tests that need them are skipped): $$missing"; fi

## test: install and run the test suite
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the benchmarks (need ../shared/data or VOICEID_DATA)
bench: $(STAMP)
	$(BIN)/python -m bench.accuracy
	$(BIN)/python -m bench.features
	$(BIN)/python -m bench.serve

## default-model: regenerate models/default from the synthetic demo voices
default-model: $(STAMP)
	$(BIN)/python -m pipeline.demo.default_model models/default

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
