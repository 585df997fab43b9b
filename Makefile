# `make test` builds .venv from nothing; `make demo` runs the main job on the embedded default.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.11.0
REFERENCE_DIR ?= $(abspath $(or $(JUKEBOX_REFERENCE_DIR),../shared/fixtures/jukebox_reference))

.PHONY: test demo bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION) torchaudio==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: $(VENV)/.installed
	JUKEBOX_REFERENCE_DIR=$(REFERENCE_DIR) $(PY) -m pytest -q

demo: $(VENV)/.installed
	JUKEBOX_REFERENCE_DIR=$(REFERENCE_DIR) $(PY) -m jukebox_model.cli.demo

bench: $(VENV)/.installed
	$(PY) bench/vqvae.py

clean:
	rm -rf $(VENV) .pytest_cache
