"""Widget latency: from a click on a product to its recommendation images painted.

Measured in the browser, in a real JupyterLab (Debian's Chromium driven by
playwright-core, tests/ui/drive_jupyterlab.mjs), for the shared 14k-item product
catalogue (``recsys_nb.data_root() / "fashion-products"``), with ``RecommenderWidget``
on the memory store and on the MongoDB store (a private local mongod, exact search).

One click: t0 is the press's own timestamp (the pointerdown event: Chromium received the
input; the widget acts on the press); t1 is the first animation frame after the widget
shows the clicked product as the query, no request is pending and all k recommendation
images are loaded and decoded (the watcher is armed before the click). In between: the
custom message to the kernel, ``store.recommend``, the reply with k+1 thumbnails (already
sent ahead by the previous click's ``prefetch`` when it could know them), React's render,
image decode; the trait update follows the reply. The widget's performance marks
(``rnb:send:*``, ``rnb:reply:*``) and the page's long tasks give the median time to each
phase ("where the time goes" in the output and the JSON).

The first click goes to a grid product, the next ones to one of the shown recommendations
(a walk through the catalogue); the first ``--warmup``
clicks are not counted (the MongoDB store reads its vectors on the first query).

The vectors come from ``models/products/embeddings.npz`` when they are there for this
catalogue (the Keras model itself is not needed: clicks query by id), else a tiny model
is trained (32x24, 1 epoch) and the catalogue embedded with it, a few minutes.

    .venv/bin/python benchmarks/widget_latency.py --quick   # 20 clicks per store
    .venv/bin/python benchmarks/widget_latency.py           # 100 clicks per store
    .venv/bin/python benchmarks/widget_latency.py --items 100000   # a 100k catalogue

``--items N`` builds a synthetic catalogue of N items from the shared one (its rows
repeated under new ids, the photos linked, the vectors the originals' plus noise).
The MongoDB store is indexed with its thumbnails and the widget reads everything from
the database (no catalogue folder), as on a second laptop.

Prints p50/p95 per store and saves benchmarks/results/widget_latency.json (``--quick``:
widget_latency-quick.json). Goal: p95 < 100 ms for both stores. ``--docs-screenshot
PATH`` also saves the memory-store widget (a query and its recommendations, palette PNG).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "ui"), str(REPO / "tests")]

from test_jupyterlab import JupyterLab, drive, write_notebook  # noqa: E402

import recsys_nb  # noqa: E402
from conftest import check_browser  # noqa: E402
from recsys_nb.embed import EMBEDDINGS_FILE, Embeddings, embed_catalog  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
K = 10
GOAL_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def catalogue_ids(catalog: Path) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(catalog / "styles.csv", usecols=["id"])["id"].to_numpy()


def vectors_for(model_dir: Path, catalog: Path, workdir: Path) -> tuple[Path, int, dict]:
    """An embeddings.npz for ``catalog``: the model's own if it matches, else a tiny model's."""
    npz = model_dir / EMBEDDINGS_FILE
    ids = catalogue_ids(catalog)
    if npz.is_file():
        cached = Embeddings.load(npz)
        if cached.source == str(catalog) and np.array_equal(cached.ids, ids):
            meta = json.loads((model_dir / "meta.json").read_text())
            return npz, int(cached.vectors.shape[1]), meta
    print(f"no vectors for {catalog} in {model_dir}: training a tiny model", flush=True)
    data = recsys_nb.load_catalog(catalog, size=(32, 24), limit=2048)
    model = recsys_nb.train(
        data=data,
        name=str(workdir / "latency-model"),
        epochs=1,
        batch_size=128,
        filters=(8, 16),
        latent_dim=16,
        verbose=0,
    )
    embed_catalog(model, catalog)
    return model.path / EMBEDDINGS_FILE, model.latent_dim, model.meta


def synthetic_catalogue(catalog: Path, npz: Path, n: int, workdir: Path) -> tuple[Path, Path]:
    """A catalogue of ``n`` items in the shared format, built from ``catalog``'s photos.

    The first items are the catalogue's own; the others repeat its rows round-robin
    under new ids, their photos symbolic links to the originals and their vectors the
    originals' plus a little noise (so that a copy is near, not equal to, its original).
    Returns the new folder and its embeddings.npz.
    """
    import pandas as pd

    table = pd.read_csv(catalog / "styles.csv", keep_default_na=False, na_values=[])
    emb = Embeddings.load(npz)
    pos = pd.Index(emb.ids).get_indexer(table["id"])
    table, pos = table[pos >= 0].reset_index(drop=True), pos[pos >= 0]
    rows = np.arange(n) % len(table)
    new_ids = np.arange(n, dtype=np.int64)
    new_ids[: len(table)] = table["id"].to_numpy()[: min(n, len(table))]
    new_ids[len(table) :] = table["id"].max() + 1 + np.arange(max(0, n - len(table)))
    out = workdir / f"catalog-{n}"
    (out / "images").mkdir(parents=True)
    big = table.iloc[rows].assign(id=new_ids)
    big.to_csv(out / "styles.csv", index=False)
    for new, old in zip(new_ids.tolist(), table["id"].to_numpy()[rows].tolist(), strict=True):
        (out / "images" / f"{new}.jpg").symlink_to(catalog / "images" / f"{old}.jpg")
    rng = np.random.default_rng(0)
    vectors = emb.vectors[pos[rows]].astype(np.float32)
    copies = np.arange(n) >= len(table)
    noise = rng.standard_normal(vectors[copies].shape).astype(np.float32)
    vectors[copies] += 0.05 * noise / np.sqrt(vectors.shape[1])  # the vectors are unit length
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = out / EMBEDDINGS_FILE
    Embeddings(emb.model_id, new_ids, vectors, None, str(out)).save(path)
    return out, path


MEMORY_CELL = """\
import pandas as pd
import recsys_nb
from recsys_nb.embed import Embeddings

catalog = {catalog!r}
meta = pd.read_csv(catalog + "/styles.csv", keep_default_na=False, na_values=[]).set_index("id")
meta["image_path"] = [f"{{catalog}}/images/{{i}}.jpg" for i in meta.index]
emb = Embeddings.load({npz!r})
emb.meta = meta.loc[emb.ids]
w_memory = recsys_nb.RecommenderWidget(store=recsys_nb.MemoryStore(emb), k={k})
w_memory"""

MONGO_CELL = """\
mongo = recsys_nb.MongoStore({uri!r}, database={database!r}, model={model_id!r})
w_mongo = recsys_nb.RecommenderWidget(store=mongo, k={k})  # thumbnails from the database
w_mongo"""


def index_in_mongo(server, database: str, npz: Path, dim: int, meta: dict, catalog: Path) -> str:
    import pandas as pd

    table = pd.read_csv(catalog / "styles.csv", keep_default_na=False, na_values=[])
    table = table.set_index("id")
    emb = Embeddings.load(npz)
    emb.meta = table.loc[emb.ids]
    images = [str(catalog / "images" / f"{i}.jpg") for i in emb.ids]
    with recsys_nb.MongoStore(server.uri, database=database) as store:
        result = store.index_embeddings(
            emb, latent_dim=dim, name=meta.get("name"), meta=meta, images=images, replace=True
        )
    print(f"indexed {len(emb.ids)} vectors in the local mongod: {result}", flush=True)
    return str(emb.model_id)


def shrink_png(src: Path, dst: Path, max_bytes: int = 300_000) -> None:
    """A palette PNG (256 colours) of ``src``, scaled down until it is under ``max_bytes``."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    scale = 1.0
    while True:
        size = (int(img.width * scale), int(img.height * scale))
        out = img.resize(size, Image.LANCZOS) if scale < 1 else img
        out = out.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        out.save(dst, optimize=True)
        if dst.stat().st_size <= max_bytes or scale < 0.4:
            return
        scale *= 0.85


def phase_table(marks: list[dict], names: list[str]) -> dict:
    """Median time from the click to each of the widget's performance marks (request sent,
    reply received, ...) and to the painted answer, per store."""
    table = {}
    for w, name in enumerate(names):
        runs = [m for m in marks if m["widget"] == w]
        if not runs:
            continue
        seen: dict[str, list[float]] = {}
        for run in runs:
            firsts: dict[str, float] = {}
            for mark, at in run["marks"]:
                firsts.setdefault(mark.removeprefix("rnb:"), at)
            for mark, at in firsts.items():
                seen.setdefault(mark, []).append(at)
        row = {
            m: round(statistics.median(v), 1)
            for m, v in sorted(seen.items(), key=lambda x: statistics.median(x[1]))
        }
        row["painted"] = round(statistics.median(r["total"] for r in runs), 1)
        row["long tasks"] = round(statistics.median(r.get("long", 0) for r in runs), 1)
        table[name] = row
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="20 clicks per store (100 without)")
    p.add_argument("--clicks", type=int, help="timed clicks per store")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--model", default=str(REPO / "models" / "products"))
    p.add_argument("--catalog", default=str(recsys_nb.data_root() / "fashion-products"))
    p.add_argument(
        "--items", type=int, help="a synthetic catalogue of this many items (e.g. 100000)"
    )
    p.add_argument("--stores", default="memory,mongo", help="memory,mongo (default) or one")
    p.add_argument(
        "--think-ms",
        type=int,
        default=0,
        help="pause between an answer and the next click (a person looks first; default 0)",
    )
    p.add_argument("--docs-screenshot", help="also save the widget as a small PNG here")
    p.add_argument(
        "--frontend",
        choices=["lab", "notebook"],
        default="lab",
        help="JupyterLab (default) or Jupyter Notebook 7",
    )
    args = p.parse_args(argv)
    clicks = args.clicks or (20 if args.quick else 100)
    stores = [s for s in args.stores.split(",") if s]
    assert set(stores) <= {"memory", "mongo"} and stores, "--stores: memory and/or mongo"
    check_browser()
    catalog = Path(args.catalog).resolve()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="widget-latency-") as tmp:
        tmp = Path(tmp)
        npz, dim, model_meta = vectors_for(Path(args.model), catalog, tmp)
        if args.items:
            catalog, npz = synthetic_catalogue(catalog, npz, args.items, tmp)
        n_items = len(Embeddings.load(npz).ids)
        cells, server = [], None
        if "memory" in stores or "mongo" in stores:  # the mongo cell reuses `catalog`
            cells.append(MEMORY_CELL.format(catalog=str(catalog), npz=str(npz), k=K))
        try:
            if "mongo" in stores:
                server = recsys_nb.LocalMongo(tmp / "mongo").start()
                model_id = index_in_mongo(server, "widget_latency", npz, dim, model_meta, catalog)
                cells.append(
                    MONGO_CELL.format(
                        uri=server.uri, database="widget_latency", model_id=model_id, k=K
                    )
                )
            write_notebook(tmp / "latency.ipynb", cells)
            shot = tmp / "widget.png"
            with JupyterLab(tmp, start_timeout=90) as lab:
                seen = drive(
                    {
                        "mode": "bench",
                        "url": lab.url("latency.ipynb", args.frontend),
                        "k": K,
                        "cells": len(cells),
                        "clicks": clicks,
                        "warmup": args.warmup,
                        "think_ms": args.think_ms,
                        "widget_shot": str(shot) if args.docs_screenshot else None,
                        "timeout_ms": 60000,
                    },
                    lab,
                    lab.home,
                    timeout=600,
                )
        finally:
            if server is not None:
                server.stop()
        if args.docs_screenshot:
            shrink_png(shot, Path(args.docs_screenshot))
            size = Path(args.docs_screenshot).stat().st_size
            print(f"screenshot: {args.docs_screenshot} ({size} bytes)")

    names = ["memory", "mongo"][: len(cells)]
    results = {}
    for name, run in zip(names, seen["runs"], strict=True):
        if name not in stores:
            continue
        ms = run["ms"]
        results[name] = {
            "clicks": len(ms),
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "mean_ms": round(statistics.fmean(ms), 1),
            "max_ms": round(max(ms), 1),
            "goal_met": percentile(ms, 95) < GOAL_MS,
            "ms": [round(x, 1) for x in ms],
        }
    phases = phase_table(seen.get("marks", []), names)
    report = {
        "benchmark": "widget_latency",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "catalogue": f"synthetic, from {args.catalog}" if args.items else str(catalog),
        "n_items": n_items,
        "vectors": str(npz) if str(npz).startswith(str(REPO)) else "tiny model (temporary)",
        "model_id": model_meta.get("model_id"),
        "k": K,
        "warmup_clicks": args.warmup,
        "think_ms": args.think_ms,
        "goal_p95_ms": GOAL_MS,
        "measure": "press (pointerdown) event timeStamp -> first animation frame with k "
        "recommendation images loaded and decoded (performance.now), Chromium",
        "frontend": "Jupyter Notebook 7" if args.frontend == "notebook" else "JupyterLab",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1min": round(os.getloadavg()[0], 2),
        },
        "wall_s": round(time.monotonic() - started, 1),
        "stores": results,
        "phases_ms": phases,
        "marks": seen.get("marks", []),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "widget_latency" + (f"-{args.items}" if args.items else "")
    name += "-notebook7" if args.frontend == "notebook" else ""
    out = RESULTS / (f"{name}-quick.json" if args.quick else f"{name}.json")
    out.write_text(json.dumps(report, indent=1) + "\n")
    frontend = "Jupyter Notebook 7" if args.frontend == "notebook" else "JupyterLab"
    print(f"\nclick -> {K} recommendation images painted, {n_items} items, {frontend} + Chromium")
    header = f"{'store':8} {'clicks':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(f"{header}  p95 < {GOAL_MS:g} ms")
    for name, r in results.items():
        print(
            f"{name:8} {r['clicks']:6d} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f}"
            f"  {'yes' if r['goal_met'] else 'NO'}"
        )
    for name, row in phases.items():
        print(
            f"{name:8} median ms from the click: " + ", ".join(f"{k} {v}" for k, v in row.items())
        )
    print(f"saved {out.relative_to(REPO)}")
    summary = {k: {"p50_ms": v["p50_ms"], "p95_ms": v["p95_ms"]} for k, v in results.items()}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
