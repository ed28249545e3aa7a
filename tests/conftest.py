"""Shared fixtures: real data from the data root, small trained models, generated images."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import recsys_nb
from recsys_nb.data import data_root

TINY_SIZE = (32, 24)  # small product images keep test training to seconds
WIDGET_DIR = Path(__file__).resolve().parent.parent / "widgets-react"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
JUPYTER = Path(sys.executable).parent / "jupyter"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    assert (root / "fashion-products" / "styles.csv").is_file(), (
        f"test data not found in {root}: set RECSYS_NB_DATA to the shared data folder"
    )
    return root


@pytest.fixture(scope="session")
def products_dir(shared_data) -> Path:
    return shared_data / "fashion-products"


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory, products_dir) -> Path:
    """A real 300-item catalogue folder (first rows of the shared styles.csv, images linked)."""
    folder = tmp_path_factory.mktemp("catalog")
    lines = (products_dir / "styles.csv").read_text().splitlines()[:301]
    (folder / "styles.csv").write_text("\n".join(lines) + "\n")
    (folder / "images").mkdir()
    for line in lines[1:]:
        item = line.split(",", 1)[0]
        os.symlink(products_dir / "images" / f"{item}.jpg", folder / "images" / f"{item}.jpg")
    return folder


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_product_model(small_catalog, models_dir):
    """A 32x24 RGB model trained for 2 epochs on the small catalogue (seconds)."""
    data = recsys_nb.load_catalog(small_catalog, size=TINY_SIZE)
    return recsys_nb.train(
        data=data,
        name=str(models_dir / "tiny-products"),
        epochs=2,
        batch_size=64,
        filters=(8, 16),
        latent_dim=16,
        verbose=0,
    )


def kill_when(proc: subprocess.Popen, reached, timeout: float) -> None:
    """``kill -9`` a running subprocess as soon as ``reached()`` is true (it must still be
    running then, within ``timeout`` seconds); reaped either way."""
    try:
        deadline = time.monotonic() + timeout
        while not reached():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def write_image(path: Path, size=(60, 80), mode="RGB", colour=(200, 30, 30)) -> Path:
    """A generated test image (width, height) with a coloured square on white."""
    fill = 255 if mode == "L" else (255, 255, 255)
    img = Image.new(mode, size, fill)
    w, h = size
    block = Image.new(mode, (w // 2, h // 2), colour[0] if mode == "L" else colour)
    img.paste(block, (w // 4, h // 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def check_browser() -> None:
    """The browser tests' needs; one clear message naming each missing piece."""
    from recsys_nb.widget import bundle_paths

    needs = [
        (f"Chromium at {CHROMIUM} (apt-get install chromium; `make system`)", Path(CHROMIUM)),
        ("node (Node 20+)", Path(shutil.which("node") or "/nonexistent")),
        (
            "widgets-react/node_modules (cd widgets-react && npm ci; `make widget`)",
            WIDGET_DIR / "node_modules" / "playwright-core",
        ),
        (f"jupyter lab at {JUPYTER} (`make setup`)", JUPYTER),
    ]
    missing = [what for what, path in needs if not path.exists()]
    assert not missing, "the browser tests need: " + "; ".join(missing)
    bundle_paths()


@pytest.fixture(scope="session")
def browser_ready():
    check_browser()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
