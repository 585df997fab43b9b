# `make demo` runs the bridge on the embedded default model; `make test` builds .venv from nothing and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.11.0
REFERENCE_DIR ?= $(abspath $(or $(JUKEBOX_REFERENCE_DIR),../shared/fixtures/jukebox_reference))

.PHONY: test lint format demo demo-vqvae bridge bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION) torchaudio==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: $(VENV)/.installed lint
	JUKEBOX_REFERENCE_DIR=$(REFERENCE_DIR) $(PY) -m pytest -q

# the lint rules and the formatting are pyproject.toml's [tool.ruff]; `make format` applies them
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# the bridge on the embedded model, one take rendered through OSC into demo_out/project, then serving until Ctrl-C
# (another port or folder: make demo DEMO_ARGS="--port 9960 --out ~/Music/demo"; all flags: python -m bridge.demo --help)
DEMO_ARGS ?=
demo: $(VENV)/.installed
	$(PY) -m bridge.demo $(DEMO_ARGS)

# the first stage alone: a synthetic clip through the tiny reference VQ-VAE at every level
demo-vqvae: $(VENV)/.installed
	JUKEBOX_REFERENCE_DIR=$(REFERENCE_DIR) $(PY) -m jukebox_model.cli.demo

# the bridge with its defaults (see `$(PY) run_bridge.py --help`)
bridge: $(VENV)/.installed
	$(PY) run_bridge.py

bench: $(VENV)/.installed
	$(PY) bench/vqvae.py

clean:
	rm -rf $(VENV) .pytest_cache
