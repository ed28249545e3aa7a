"""Run the front end's own checks (vitest component tests, TypeScript) from pytest,
so that `make test` covers them. Needs widgets-react/node_modules (`make widget`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widgets-react"


@pytest.fixture(scope="module")
def npm() -> str:
    npm = shutil.which("npm")
    assert npm, "npm not found: install Node 20+ (the widget's front end is built with it)"
    assert (WIDGET_DIR / "node_modules").is_dir(), (
        "widgets-react/node_modules is missing: run `make widget` "
        "(or `cd widgets-react && npm ci && npm run build`)"
    )
    return npm


@pytest.mark.parametrize("script", ["test", "typecheck"])
def test_front_end(npm, script):
    run = subprocess.run(
        [npm, "run", "--silent", script],
        cwd=WIDGET_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1", "NO_COLOR": "1"},
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
