# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs: serving needs only the default dependencies; training, tests, lint and benchmarks
# need the `train` extra (TensorFlow, Keras, matplotlib) and `dev`. The full one marks both done.
SERVE_STAMP := $(VENV)/.installed-serve
TRAIN_STAMP := $(VENV)/.installed-train
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DOCS_PORT ?= 8001

.PHONY: run teach test quick lint docs docs-serve docs-errors smoke bench default-model system-deps \
	docker-deps clean
# Debian packages: what the tests use (ffmpeg for m4a/webm, Chromium for the page), and what the
# Docker smoke test needs on the host. Each is installed only by its own explicit target.
TEST_PACKAGES := ffmpeg libsndfile1 chromium chromium-driver
DOCKER_PACKAGES := docker.io debootstrap docker-compose
# The quick run: everything but the slow, browser, real-recording and Docker tests.
QUICK := not slow and not browser and not integration and not docker

# apt_install PACKAGES: install the missing ones when root on Debian, else say which are missing.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "not installed (run as root on Debian to install): $$missing"; fi
endef

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(SERVE_STAMP)

$(TRAIN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train]'
	touch $(TRAIN_STAMP) $(SERVE_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $(STAMP) $(TRAIN_STAMP) $(SERVE_STAMP)

## run: install what serving needs and serve the shipped default model on $(HOST):$(PORT)
run: $(SERVE_STAMP)
	$(BIN)/voiceid serve --model models/default --host $(HOST) --port $(PORT)

## teach: as run, with the train extra too, so the page can teach it new voices (POST /train)
teach: $(TRAIN_STAMP)
	$(BIN)/voiceid serve --model models/default --host $(HOST) --port $(PORT)

## system-deps: the Debian packages the tests use (ffmpeg, Chromium)
system-deps:
	$(call apt_install,$(TEST_PACKAGES))

## docker-deps: the Debian packages docker/smoke-test.sh needs (docker, debootstrap, docker-compose)
docker-deps:
	$(call apt_install,$(DOCKER_PACKAGES))

## test: install and run the test suite, less the Docker tests (see smoke)
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m "not docker"

## quick: the fast part of the suite, for the edit-test loop
quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "$(QUICK)"

## smoke: build the Docker images and run tests/docker against them (root; see docker/README.md)
smoke: $(STAMP) docker-deps
	bash docker/smoke-test.sh

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## docs: build the documentation site into site/, strict (a broken link or anchor fails), offline
# (Not --quiet: it hides the warnings that strict mode counts, and the build then passes.)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: serve the documentation on $(HOST):$(DOCS_PORT), rebuilt as pages change
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr $(HOST):$(DOCS_PORT)

## docs-errors: the error messages of the code that docs/troubleshooting.md lacks, to paste
docs-errors: $(STAMP)
	$(BIN)/python -m docsgen.messages

## bench: the benchmarks (need ../shared/data or VOICEID_DATA)
bench: $(STAMP)
	$(BIN)/python -m bench.accuracy
	$(BIN)/python -m bench.features
	$(BIN)/python -m bench.serve

## default-model: regenerate models/default from the synthetic demo voices
default-model: $(STAMP)
	$(BIN)/python -m pipeline.demo.default_model models/default

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
