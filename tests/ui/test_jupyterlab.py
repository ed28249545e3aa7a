"""The widget end to end in a real JupyterLab, driven by Debian's Chromium (playwright-core).

The test starts JupyterLab on a free loopback port with a token (its own config, data and
runtime folders in a tmp dir), writes a notebook that builds ``RecommenderWidget`` from a
small real catalogue and model, opens it, runs all cells, clicks the third product and
checks the recommendation images against ``recsys-nb recommend --json`` and the kernel's
``w.selected``; then drops a catalogue image file and checks that its product comes first.
A screenshot is written to tests/artifacts/jupyterlab.png. ``make test-e2e`` runs tests/ui.

:class:`JupyterLab` and :func:`drive` are reused by benchmarks/widget_latency.py.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import recsys_nb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WIDGET_DIR = REPO / "widgets-react"
DRIVER = HERE / "drive_jupyterlab.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
BIN = Path(sys.executable).parent
K = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_cell(source: str, index: int) -> dict:
    return {
        "id": f"cell-{index}",
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source,
    }


def write_notebook(path: Path, cells: list[str]) -> Path:
    notebook = {
        "cells": [code_cell(c, i) for i, c in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path


class JupyterLab:
    """``with JupyterLab(folder) as lab: lab.url("x.ipynb")``: a private JupyterLab server.

    Loopback only, a random token, a free port, its own config/data/runtime folders (no
    user settings, no workspace restored, no browser opened). Stopped (with its kernels)
    on exit; :meth:`log` is its output, for failure messages.
    """

    def __init__(self, root: Path, start_timeout: float = 60.0):
        self.root = Path(root)
        self.home = self.root / ".jupyter-test"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.start_timeout = start_timeout
        self.log_path = self.home / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return "(no log)"

    def url(self, notebook: str, frontend: str = "lab") -> str:
        """The notebook opened in JupyterLab (``"lab"``) or in Jupyter Notebook 7
        (``"notebook"``, served by the same server)."""
        if frontend == "notebook":
            return f"http://127.0.0.1:{self.port}/notebooks/{notebook}?token={self.token}"
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?reset&token={self.token}"

    def _api(self, path: str, method: str = "GET", timeout: float = 2.0):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status

    def start(self) -> JupyterLab:
        for sub in ("config/labconfig", "data", "runtime", "ipython", "workspaces"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        # No "get notified about official Jupyter news?" toast over the screenshots.
        disabled = {"@jupyterlab/apputils-extension:announcements": True}
        (self.home / "config" / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": disabled})
        )
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "IPYTHONDIR": str(self.home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.terminals_enabled=False",
        ]
        if os.geteuid() == 0:  # containers
            cmd.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited at start-up (code {self.proc.returncode}):\n{self.log()}"
                )
            try:
                if self._api("/api/status") == 200:
                    return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"JupyterLab did not answer on port {self.port} within {self.start_timeout:.0f} s:\n"
            + self.log()
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:  # a clean shutdown also shuts its kernels down
            self._api("/api/shutdown", method="POST", timeout=5)
            proc.wait(timeout=15)
            return
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def drive(config: dict, lab: JupyterLab, workdir: Path, timeout: float = 240) -> dict:
    """Run the driver with ``config``; its JSON result, or an error with the page, the
    driver's progress and JupyterLab's log."""
    config_path = workdir / f"drive-{config['mode']}.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "WIDGET_DIR": str(WIDGET_DIR), "CHROMIUM": CHROMIUM}
    try:
        run = subprocess.run(
            ["node", str(DRIVER), str(config_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        progress = (exc.stderr or b"").decode(errors="replace")[-3000:]
        raise AssertionError(
            f"the browser driver did not finish within {timeout:.0f} s\n--- driver ---\n"
            f"{progress}\n--- JupyterLab log ---\n{lab.log()}"
        ) from None
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if run.returncode != 0:
        raise AssertionError(
            f"{result.get('error') or 'the browser driver failed'}\n--- driver ---\n"
            f"{run.stderr[-3000:]}\n--- browser console ---\n"
            + "\n".join(result.get("console", [])[-20:])
            + f"\n--- JupyterLab log ---\n{lab.log()}"
        )
    return result


def cli_recommend(model: Path, catalog: Path, *query: str) -> subprocess.Popen:
    """``recsys-nb recommend --json`` started in the background (it overlaps the browser)."""
    return subprocess.Popen(
        [
            str(BIN / "recsys-nb"),
            "recommend",
            "--model",
            str(model),
            "--catalog",
            str(catalog),
            "-k",
            str(K),
            "--json",
            *query,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli_ids(proc: subprocess.Popen) -> list[int]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"recsys-nb recommend failed:\n{err[-3000:]}"
    return [int(row["id"]) for row in json.loads(out)]


def run_widget_notebook(root: Path, make_widget: str, image: Path, shot: str) -> dict:
    """Open a notebook whose first cell (``make_widget``) shows a widget ``w`` in JupyterLab,
    click the third product and drop ``image`` in Chromium; what the page and kernel showed.
    Asserts that the widget logged no errors; screenshots go to ``ARTIFACTS/<shot>*.png``."""
    write_notebook(
        root / "widget.ipynb",
        [
            make_widget,
            'print("selected:", w.selected, "image" if w.query_image is not None else "")',
        ],
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with JupyterLab(root) as lab:
        seen = drive(
            {
                "mode": "e2e",
                "url": lab.url("widget.ipynb"),
                "k": K,
                "image": str(image),
                "screenshot": str(ARTIFACTS / f"{shot}.png"),
                "widget_shot": str(ARTIFACTS / f"{shot}-widget.png"),
                "cells": 1,
                "timeout_ms": 45000,
            },
            lab,
            lab.home,
        )
    widget_errors = [m for m in seen["console"] if "rnb" in m or "widget.js" in m]
    assert widget_errors == [], widget_errors
    return seen


def test_widget_in_jupyterlab(browser_ready, tiny_product_model, small_catalog, tmp_path):
    model_path = Path(tiny_product_model.path)
    store = recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)
    third = int(store.ids[2])
    image = small_catalog / "images" / f"{third}.jpg"
    by_id = cli_recommend(model_path, small_catalog, "--id", str(third))
    by_image = cli_recommend(model_path, small_catalog, "--image", str(image))

    seen = run_widget_notebook(
        tmp_path,
        "import recsys_nb\n"
        f"w = recsys_nb.RecommenderWidget(model={str(model_path)!r}, "
        f"catalog={str(small_catalog)!r}, k={K})\n"
        "w",
        image,
        "jupyterlab",
    )
    screenshot = ARTIFACTS / "jupyterlab.png"

    # The grid: the catalogue in order, alt text = product name.
    names = store.meta["productDisplayName"]
    assert [g["id"] for g in seen["grid"][:3]] == store.ids[:3].tolist()
    assert [g["alt"] for g in seen["grid"][:3]] == names.iloc[:3].tolist()
    assert "selected: None" in seen["before"]

    # The click: k images, the ids `recsys-nb recommend --json` gives; the kernel knows.
    expected = cli_ids(by_id)
    assert expected == store.recommend(third, k=K)["id"].tolist()
    assert seen["click"]["query"] == str(third)
    assert [r["id"] for r in seen["click"]["recs"]] == expected
    assert all(r["loaded"] for r in seen["click"]["recs"])
    assert [r["alt"] for r in seen["click"]["recs"]] == names.loc[expected].tolist()
    assert f"selected: {third}" in seen["after"]
    assert screenshot.stat().st_size > 10_000

    # The dropped image file: its own catalogue product comes first.
    from_image = cli_ids(by_image)
    assert from_image[0] == third
    assert seen["image"]["query"] == "image"
    assert [r["id"] for r in seen["image"]["recs"]] == from_image
    assert "selected: None image" in seen["after_image"]
