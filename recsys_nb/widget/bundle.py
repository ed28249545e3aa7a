"""The widget's built front end: ``recsys_nb/static/widget.js`` and ``widget.css``.

They are built from ``widgets-react/`` by ``make widget`` (or ``cd widgets-react && npm ci
&& npm run build``), and by the package's build hook (hatch_widget.py) for a wheel or sdist.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RecsysError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
BUNDLE_FILES = ("widget.js", "widget.css")
HOW_TO_BUILD = (
    "build it with `make widget`, or `cd widgets-react && npm ci && npm run build` "
    "(Node 20+; it writes recsys_nb/static/widget.js and widget.css)"
)


def bundle_paths(static_dir: Path | None = None) -> tuple[Path, Path]:
    """The built ``widget.js`` and ``widget.css``; a clear error if they are missing."""
    static_dir = STATIC_DIR if static_dir is None else Path(static_dir)
    paths = tuple(static_dir / name for name in BUNDLE_FILES)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise RecsysError(
            f"the widget's front end is not built ({', '.join(map(str, missing))} missing): "
            + HOW_TO_BUILD
        )
    return paths  # type: ignore[return-value]


def file_contents(path: Path):
    """The file for anywidget: watched and hot-reloaded when ANYWIDGET_HMR=1."""
    if os.environ.get("ANYWIDGET_HMR") == "1":
        from anywidget._util import try_file_contents

        return try_file_contents(path)
    return path.read_text()
