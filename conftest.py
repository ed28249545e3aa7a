"""nbval runs every notebook in ``notebooks/`` in quick mode (``RECSYS_NB_QUICK=1``).

(At the root, not in ``notebooks/``: a second ``conftest`` module there would shadow
``tests/conftest.py``, which the tests import helpers from.)

The variable is set just before a notebook's kernel starts (nbval starts one per
notebook when its first cell is set up) and restored before any other test, so the
plain tests in ``tests/`` run with the environment they were given.
"""

from __future__ import annotations

import os

import pytest

QUICK_ENV = "RECSYS_NB_QUICK"
_saved: dict[str, str | None] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.path.suffix == ".ipynb":
        _saved.setdefault(QUICK_ENV, os.environ.get(QUICK_ENV))
        os.environ[QUICK_ENV] = "1"
    elif _saved:
        _restore()


def pytest_sessionfinish(session):
    _restore()


def _restore() -> None:
    if QUICK_ENV in _saved:
        old = _saved.pop(QUICK_ENV)
        if old is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = old
