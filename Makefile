# recsys-nb: `make demo` runs the pipeline, `make test` runs every test, `make lint` checks
# style and types. Each target installs what it needs (venv, packages, mongod, Chromium, the
# widget bundle) and no more.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every install is pinned by the lock file (constraints) and editable (the checkout is the package).
# pip compiles every module up front: --no-compile halved a fresh install (50 -> 24 s) but the
# test run's processes then compiled them on import (pytest +76 s in a fresh clone).
PIP_INSTALL := $(VENV)/bin/pip install --quiet -c requirements-lock.txt -e
DEPS := pyproject.toml requirements-lock.txt

# What each set of extras has installed into the venv (a bigger set stamps the smaller ones too).
STAMP_DEMO := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
STAMP_BENCH := $(VENV)/.installed-bench
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo test test-e2e lint lab notebooks setup widget system bench clean

# The package and its runtime dependencies only: no test tools, no mongod, no Chromium.
demo: $(STAMP_DEMO) widget
	$(PY) -m recsys_nb.demo

# The whole suite (what CI runs: .ci/run): dev and bench extras, the bundle, Chromium.
# One worker per core (pytest-xdist), a test file per worker: the browser, JupyterLab and
# mongod tests wait on other processes, so two workers on two cores take 4 minutes, not 7.
test: $(STAMP_TEST) widget system
	$(PY) -m pytest -n auto --dist loadfile

# The browser tests alone (the widget in a harness page and in a real JupyterLab).
test-e2e: setup widget system
	$(PY) -m pytest tests/ui

# ruff on the Python code, tsc on the widget's TypeScript.
lint: setup widgets-react/node_modules/.package-lock.json
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd widgets-react && npm run --silent typecheck

lab: setup widget
	$(VENV)/bin/jupyter lab notebooks/

# Run every notebook top to bottom and save its outputs (what is committed: full mode, after
# make demo; RECSYS_NB_QUICK=1 for quick mode). No widget state is saved: figures carry a PNG.
NOTEBOOKS ?= $(wildcard notebooks/*.ipynb)
notebooks: setup widget
	for nb in $(NOTEBOOKS); do \
	  echo "$$nb"; \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --log-level ERROR \
	    --ExecutePreprocessor.store_widget_state=False --ExecutePreprocessor.timeout=3600 \
	    "$$nb" || exit 1; \
	done

# The development environment: the package, the dev extra (pytest, nbval, JupyterLab, ruff,
# build, the local mongod).
setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_DEMO): $(DEPS) | $(VENV)/bin/python
	$(PIP_INSTALL) .
	touch $@

$(STAMP): $(DEPS) | $(VENV)/bin/python
	$(PIP_INSTALL) '.[dev]'
	touch $@ $(STAMP_DEMO)

$(STAMP_BENCH): $(DEPS) | $(VENV)/bin/python
	$(PIP_INSTALL) '.[bench]'
	touch $@ $(STAMP_DEMO)

$(STAMP_TEST): $(DEPS) | $(VENV)/bin/python
	$(PIP_INSTALL) '.[dev,bench]'
	touch $@ $(STAMP) $(STAMP_BENCH) $(STAMP_DEMO)

bench: $(STAMP_BENCH)
	$(PY) benchmarks/train_speed.py

# The widget bundle (recsys_nb/static/, not committed), rebuilt when its sources change.
# Building the package (pip install ., python -m build) runs the same steps: hatch_widget.py.
WIDGET_SRC := $(shell find widgets-react/src -type f -not -path '*/__tests__/*') widgets-react/build.mjs recsys_nb/widget/contract.json
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
	rm -rf $(VENV) recsys_nb/static widgets-react/node_modules data/cache build dist
