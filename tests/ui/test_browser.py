"""The widget in a real browser: Debian's Chromium driven by playwright-core.

The built bundle (recsys_nb/static) is rendered in a small harness page whose
anywidget model talks, over HTTP on localhost, to a real RecommenderWidget backed by a
real MemoryStore in this process: clicks reach Python, Python's replies (binary
thumbnails) and trait updates reach the page; the same-type toggle and an over-size
image file are checked too. A screenshot is written to tests/artifacts/widget.png.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import recsys_nb
from recsys_nb.widget import MAX_UPLOAD_BYTES, STATIC_DIR, RecommenderWidget

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WIDGET_DIR = REPO / "widgets-react"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"


class BridgeComm:
    """The widget's comm: queues what Python sends until the page collects it."""

    kernel = "bridge"
    comm_id = "bridge"

    def __init__(self):
        self.queue: list[dict] = []

    def send(self, data=None, buffers=None, **_):
        msg = dict(data)
        msg["buffers"] = [base64.b64encode(bytes(b)).decode() for b in (buffers or [])]
        self.queue.append(msg)

    def on_msg(self, *_):
        pass

    def close(self, *_, **__):
        pass

    def drain(self) -> list[dict]:
        out, self.queue = self.queue, []
        return out


def serve(widget: RecommenderWidget) -> ThreadingHTTPServer:
    lock = threading.Lock()  # one comm message at a time, like the kernel
    files = {
        "/": (HERE / "harness.html", "text/html"),
        "/harness.js": (HERE / "harness.js", "text/javascript"),
        "/static/widget.js": (STATIC_DIR / "widget.js", "text/javascript"),
        "/static/widget.css": (STATIC_DIR / "widget.css", "text/css"),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def reply(self, body: bytes, kind="application/json"):
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path in files:
                path, kind = files[self.path]
                return self.reply(path.read_bytes(), kind)
            with lock:
                if self.path == "/state":
                    state = widget.get_state()
                    return self.reply(json.dumps(state).encode())
                if self.path == "/python":
                    data = {
                        "selected": widget.selected,
                        "recommendations": widget.recommendations,
                        "same_type": widget.same_type,
                    }
                    return self.reply(json.dumps(data).encode())
            self.send_error(404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            with lock:
                if self.path == "/custom":
                    buffers = [memoryview(base64.b64decode(b)) for b in body["buffers"]]
                    data = {"method": "custom", "content": body["content"]}
                    widget._handle_msg({"content": {"data": data}, "buffers": buffers})
                elif self.path == "/update":
                    data = {"method": "update", "state": body["state"], "buffer_paths": []}
                    widget._handle_msg({"content": {"data": data}, "buffers": []})
                elif self.path.startswith("/python/select?id="):
                    # as a notebook cell would; the page collects the update by polling
                    widget.selected = int(self.path.split("=", 1)[1])
                    return self.reply(b"{}")
                elif self.path != "/poll":
                    return self.send_error(404)
                return self.reply(json.dumps({"messages": widget.comm.drain()}).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_click_image_and_python_selection_in_chromium(
    browser_ready, tiny_product_model, small_catalog, tmp_path
):
    store = recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)
    widget = RecommenderWidget(store=store)
    widget.comm = BridgeComm()
    server = serve(widget)
    third = int(store.ids[2])
    image = small_catalog / "images" / f"{third}.jpg"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "widget.png"
    big = tmp_path / "huge.jpg"
    with big.open("wb") as f:  # sparse: over the limit on disk at no cost
        f.truncate(MAX_UPLOAD_BYTES + 1)
    try:
        run = subprocess.run(
            [
                "node",
                str(HERE / "drive.mjs"),
                f"http://127.0.0.1:{server.server_port}/",
                str(image),
                str(screenshot),
                str(big),
            ],
            env={**os.environ, "WIDGET_DIR": str(WIDGET_DIR), "CHROMIUM": CHROMIUM},
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["console"] == []
    names = store.meta["productDisplayName"]

    # The grid: the first page, alt text = product name.
    assert [g["id"] for g in seen["grid"]] == store.ids[:24].tolist()
    assert [g["alt"] for g in seen["grid"]] == names.iloc[:24].tolist()
    assert seen["before"]["selected"] is None

    # A click: one recommend request; k recommendations as `recsys-nb recommend` gives them.
    expected = store.recommend(third, k=10)
    (request,) = seen["sent_after_click"]
    assert request["kind"] == "recommend" and request["item_id"] == third and request["uuid"]
    assert seen["click"]["query"] == str(third)
    assert [r["id"] for r in seen["click"]["recs"]] == expected["id"].tolist()
    assert [r["alt"] for r in seen["click"]["recs"]] == expected["productDisplayName"].tolist()
    assert f"{expected['score'].iloc[0]:.3f}" in seen["click"]["recs"][0]["text"]
    assert seen["after_click"]["selected"] == third  # the kernel-side trait changed
    assert [r["id"] for r in seen["after_click"]["recommendations"]] == expected["id"].tolist()
    assert screenshot.stat().st_size > 10_000

    # Moving on, the keyboard, and the trail.
    first_rec = int(expected["id"].iloc[0])
    assert [r["id"] for r in seen["moved_on"]["recs"]] == store.recommend(first_rec)["id"].tolist()
    assert seen["moved_on"]["trail"] == [names[third], names[first_rec]]
    second = int(store.ids[1])
    assert seen["focused"] == second
    assert seen["keyboard"]["query"] == str(second)
    assert seen["keyboard"]["trail"][-1] == names[second]
    assert seen["back"]["trail"] == [names[third]]

    # A chosen image file: its own catalogue item comes first.
    assert seen["sent_image"]["image"]["name"] == image.name
    from_image = store.recommend(image=image, k=10)["id"].tolist()
    assert [r["id"] for r in seen["image"]["recs"]] == from_image
    assert from_image[0] == third
    assert seen["after_image"]["selected"] is None

    # Python sets `selected`; the page follows.
    sixth = int(store.ids[5])
    assert [r["id"] for r in seen["from_python"]["recs"]] == store.recommend(sixth)["id"].tolist()
    assert seen["from_python"]["trail"][-1] == names[sixth]

    # The same-type toggle: Python's trait, recomputed recommendations of that type only.
    python = seen["same_type"]["python"]
    ids = [r["id"] for r in python["recommendations"]]
    assert python["same_type"] is True and python["selected"] == sixth
    kind = store.meta.loc[sixth, "articleType"]
    assert ids == store.recommend(sixth, filters={"articleType": kind})["id"].tolist()
    assert [r["id"] for r in seen["same_type"]["shown"]["recs"]] == ids

    # An over-size image file: one line in the status, nothing sent to Python.
    assert seen["too_large"]["sent"] == 0
    assert "huge.jpg: image file too large: 20.1 MB (at most 20 MB)" in seen["too_large"]["status"]
