# recsys-nb: `make demo` runs the pipeline, `make test` runs every test.
# Everything a step needs (venv, packages, mongod, Chromium, the widget bundle) is installed here.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-e2e lab setup widget system bench clean

demo: setup widget system
	$(PY) -m recsys_nb.demo

test: setup widget system
	$(PY) -m pytest

# The browser tests alone (the widget in a harness page and in a real JupyterLab).
test-e2e: setup widget system
	$(PY) -m pytest tests/ui

lab: setup widget
	$(VENV)/bin/jupyter lab notebooks/

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c requirements-lock.txt -e '.[dev]'
	touch $@

bench: setup
	$(VENV)/bin/pip install --quiet -c requirements-lock.txt -e '.[bench]'
	$(PY) benchmarks/train_speed.py

# The widget bundle (recsys_nb/static/, not committed), rebuilt when its sources change.
WIDGET_SRC := $(shell find widgets-react/src -type f -not -path '*/__tests__/*') widgets-react/build.mjs
widget: recsys_nb/static/widget.js

widgets-react/node_modules/.package-lock.json: widgets-react/package.json widgets-react/package-lock.json
	cd widgets-react && npm ci --no-audit --no-fund
	touch $@

recsys_nb/static/widget.js: widgets-react/node_modules/.package-lock.json $(WIDGET_SRC)
	cd widgets-react && npm run build

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
system: /usr/bin/chromium

/usr/bin/chromium:
	apt-get update && apt-get install -y --no-install-recommends chromium

clean:
	rm -rf $(VENV) recsys_nb/static widgets-react/node_modules data/cache
