"""Build step of the package: bundle the React widget into ``recsys_nb/static/``.

hatch-jupyter-builder calls :func:`build_widget` (``[tool.hatch.build.hooks.jupyter-builder]``
in pyproject.toml) before hatchling builds a wheel, an sdist or an editable install, so
that ``pip install .`` and ``python -m build`` work from a clean checkout where
``make widget`` never ran. It runs what ``make widget`` runs, in ``widgets-react/``:

- ``npm ci`` when ``node_modules`` is missing or older than ``package-lock.json``;
- ``npm run build`` (esbuild: ``widget.js`` + ``widget.css``).

Nothing runs when the bundle is newer than every source file (``src/`` without tests,
``build.mjs``, ``package.json``, ``package-lock.json``): a wheel built from the sdist,
which carries the bundle, needs no Node. An editable install only builds a missing
bundle (``make widget`` keeps it fresh). Needs Node.js 20+ and npm otherwise.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUNDLE_FILES = ("widget.js", "widget.css")
# (and the Python/JS contract, which src/contract.ts imports)
SOURCE_FILES = (
    "build.mjs",
    "package.json",
    "package-lock.json",
    "../recsys_nb/widget/contract.json",
)
TEST_DIRS = {"__tests__"}

log = logging.getLogger("recsys_nb.build")


def newest_source_mtime(widget_dir: Path) -> float:
    """The newest modification time among the widget's sources (tests left out)."""
    newest = 0.0
    for name in SOURCE_FILES:
        path = widget_dir / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
    for folder, dirs, files in os.walk(widget_dir / "src"):
        dirs[:] = [d for d in dirs if d not in TEST_DIRS]
        for name in files:
            newest = max(newest, (Path(folder) / name).stat().st_mtime)
    return newest


def bundle_state(widget_dir: Path, out_dir: Path) -> str:
    """``"missing"``, ``"stale"`` (older than a source) or ``"fresh"``."""
    paths = [out_dir / name for name in BUNDLE_FILES]
    if not all(p.is_file() for p in paths):
        return "missing"
    oldest = min(p.stat().st_mtime for p in paths)
    return "stale" if newest_source_mtime(widget_dir) > oldest else "fresh"


def _run(cmd: list[str], cwd: Path) -> None:
    log.info("recsys-nb widget: %s (in %s)", " ".join(cmd), cwd)
    subprocess.run(cmd, cwd=cwd, check=True)


def build_widget(
    target_name: str,
    version: str,
    path: str = "widgets-react",
    out: str = "recsys_nb/static",
    force: bool = False,
) -> None:
    """Bundle ``path`` into ``out`` unless the bundle is fresh (see the module docstring).

    ``target_name`` is ``"wheel"`` or ``"sdist"``; ``version`` is ``"standard"`` or
    ``"editable"`` (hatch-jupyter-builder's arguments). ``force`` rebuilds in any case.
    """
    widget_dir = ROOT / path
    out_dir = ROOT / out
    state = bundle_state(widget_dir, out_dir)
    if state == "fresh" and not force:
        log.info("recsys-nb widget: %s is up to date", out)
        return
    if version == "editable" and state == "stale" and not force:
        log.info("recsys-nb widget: editable install keeps the stale bundle; run make widget")
        return
    if not (widget_dir / "package.json").is_file():
        raise RuntimeError(f"cannot build the widget: {widget_dir}/package.json is missing")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"the widget bundle in {out} is {state} and npm is not on PATH: building "
            "recsys-nb from source needs Node.js 20+ with npm (or install a wheel or the "
            "sdist, which carry the bundle)"
        )
    installed = widget_dir / "node_modules" / ".package-lock.json"
    lock = widget_dir / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund"], widget_dir)
    _run([npm, "run", "build"], widget_dir)
    missing = [name for name in BUNDLE_FILES if not (out_dir / name).is_file()]
    if missing:
        raise RuntimeError(f"npm run build did not write {', '.join(missing)} into {out}")
