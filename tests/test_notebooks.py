"""The committed notebooks: numbered, tutobook-shaped, small, and free of widget state.

Executing them is nbval's job (``pytest --nbval``, wired in pyproject.toml); these
checks read the files only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
MAX_BYTES = 1_000_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IGNORE = "nbval-ignore-output"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_ten_numbered_notebooks():
    names = [p.name for p in PATHS]
    assert len(names) == 10, names
    assert all(NAME.match(n) for n in names), names
    assert [int(NAME.match(n).group(1)) for n in names] == list(range(1, 11))


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_small(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_no_widget_state(path):
    nb = load(path)
    assert "widgets" not in nb["metadata"], f"{path.name}: strip metadata.widgets"
    assert WIDGET_STATE not in path.read_text(), f"{path.name} holds widget state"
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                tags = cell.get("metadata", {}).get("tags", [])
                assert IGNORE in tags, f"{path.name}: a widget output without {IGNORE}"


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_tutobook_shape(path):
    """A title and description cell, a Setup cell, outputs committed, prose after results."""
    nb = load(path)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown"
    first = "".join(cells[0]["source"])
    assert first.startswith("# ") and "**Description:**" in first
    assert any(
        c["cell_type"] == "markdown" and "".join(c["source"]).strip() == "## Setup"
        for c in cells[:3]
    )
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name}: execute it before committing"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    assert cells[-1]["cell_type"] == "markdown", "end with a sentence about the last result"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


FIGURE_VIEWS = ("application/vnd.jupyter.widget-view+json", "application/vnd.plotly.v1+json")
STATIC = ("image/png", "image/jpeg", "image/svg+xml")


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_every_figure_has_a_static_image(path):
    """A reader without a kernel (GitHub, nbviewer) sees every figure: live outputs also
    carry a picture."""
    for n, cell in enumerate(load(path)["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if not any(kind in data for kind in FIGURE_VIEWS):
                continue
            assert any(kind in data for kind in STATIC), f"{path.name}[{n}]: no static image"
