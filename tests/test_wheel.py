"""The package as a user installs it: the wheel built from this checkout, in a fresh venv.

The wheel must carry the widget bundle (built by the build hook, hatch_widget.py, even
where ``make widget`` never ran) and the installed package must run from an empty folder
without writing into its own install: models, caches and the local database go to the
user data folder (platformdirs) when neither ``RECSYS_NB_HOME`` nor a checkout is there.

To keep this to about a minute, the wheel is installed with ``--no-deps`` and the venv
sees the dependencies already installed in the running environment (same pins) through
a ``.pth`` file; the editable recsys_nb of that environment stays invisible (its own
``.pth`` hook is not processed there), which the test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ("recsys_nb/static/widget.js", "recsys_nb/static/widget.css")
# Variables that would point the installed package elsewhere than a new user's defaults.
CLEARED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MONGODB_URI", "KERAS_BACKEND", "KERAS_HOME")


def run(cmd, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; on failure, fail the test with its output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def js_version() -> str:
    return json.loads((ROOT / "widgets-react" / "package.json").read_text())["version"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``python -m build --wheel`` of the checkout (isolated build env, hatchling + hook)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT], timeout=600)
    (built,) = out.glob("recsys_nb-*.whl")
    return built


def test_wheel_carries_the_widget_bundle(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in BUNDLE:
            assert name in names, f"{name} is not in {wheel.name}"
        assert zf.getinfo(BUNDLE[0]).file_size > 10_000
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = zf.read(metadata).decode()
    # One version for Python and JS: the wheel's is widgets-react/package.json's.
    assert wheel.name.startswith(f"recsys_nb-{js_version()}-")
    assert f"\nVersion: {js_version()}\n" in meta
    # Only the package: no sources of the widget, tests or build hook.
    assert all(n.startswith(("recsys_nb/", "recsys_nb-")) for n in names), sorted(names)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime."""
    files = {}
    for path in folder.rglob("*"):
        if path.is_file() or path.is_symlink():
            st = path.lstat()
            files[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return files


def test_installed_wheel_keeps_its_files_in_the_user_data_folder(wheel, tmp_path, shared_data):
    assert (shared_data / "fashion-mnist").is_dir(), f"no fashion-mnist in {shared_data}"
    env_dir = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env_dir], timeout=120)
    python = env_dir / "bin" / "python"
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    )
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps"]
        + ["--no-index", wheel],
        timeout=300,
    )
    # The pinned dependencies of the running environment, visible after the venv's own.
    deps = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (site / "_recsys_nb_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    before = snapshot(env_dir)

    home = tmp_path / "home"  # a new user's HOME: platformdirs' folders land under it
    work = tmp_path / "work"  # an empty folder to run from, far from the checkout
    home.mkdir()
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECSYS_NB_", "XDG_")) and k not in CLEARED
    }
    env.update(
        HOME=str(home),
        RECSYS_NB_DATA=str(shared_data),
        PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
    )
    kw = {"cwd": work, "env": env}

    probe = run(
        [
            python,
            "-c",
            "import json, platformdirs, recsys_nb; print(json.dumps([recsys_nb.__file__, "
            "recsys_nb.__version__, platformdirs.user_data_dir('recsys-nb')]))",
        ],
        **kw,
    )
    module, version, user_data = json.loads(probe.stdout.strip().splitlines()[-1])
    package = Path(module).parent
    assert package == site / "recsys_nb", f"imported {module}, not the wheel in {site}"
    assert version == js_version()
    for name in BUNDLE:
        assert (site / name).is_file()
    user_data = Path(user_data)
    assert user_data.is_relative_to(home), user_data

    cli = env_dir / "bin" / "recsys-nb"

    info = run([cli, "info"], timeout=120, **kw).stdout
    assert f"home: {user_data}" in info, info
    assert "user data folder" in info, info

    trained = run([cli, "train", "--dataset", "fashion-mnist", "--quick"], timeout=600, **kw)
    saved = [line for line in trained.stdout.splitlines() if line.startswith("saved ")]
    assert saved, trained.stdout[-2000:]
    model = Path(saved[-1].removeprefix("saved ").split(":", 1)[0])
    assert model == user_data / "models" / "fashion-mnist", saved[-1]
    assert (model / "model.keras").is_file() and (model / "meta.json").is_file()

    run([cli, "embed", "--model", "fashion-mnist"], timeout=300, **kw)  # by name
    assert (model / "embeddings.npz").is_file()

    rec = run(
        [cli, "recommend", "--model", "fashion-mnist", "--id", "0", "-k", "5", "--json"], **kw
    )
    rows = json.loads(rec.stdout.strip().splitlines()[-1])
    assert len(rows) == 5 and all({"id", "score"} <= set(r) for r in rows), rows

    after = snapshot(env_dir)
    written = sorted(set(after.items()) - set(before.items()))
    assert not written, f"written inside the venv: {written[:20]}"
    assert not any(work.iterdir()), f"written into the working folder: {list(work.iterdir())}"
