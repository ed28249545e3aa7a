"""The pretrained CNN's input size: feature speed against retrieval quality.

For each input size, EfficientNet-Lite0's pooled features (``recsys_nb.cnn``) are
timed and evaluated exactly as :func:`recsys_nb.evaluate.evaluate` evaluates a products
model trained on the shared catalogue (default split: 10% of ids, seed 0): the
validation items (1,497) query each other, and ``cnn_pca32`` is fitted on the first
``CNN_FIT_ITEMS`` training items' features (5,000 in the committed table, 2,000 now).

- ``ms/img``: the network alone (jitted, batch 32, prepared images), median of rounds;
- ``end-to-end``: ms per image of the whole feature run of the evaluation's images
  (JPEG decode, pad and resize, network), the first time (the cache then holds them);
- P@10 of articleType and same_colour@10 for ``cnn`` and ``cnn_pca32``.

    python benchmarks/cnn_features.py                    # sizes 112 128 160 192 224
    python benchmarks/cnn_features.py --sizes 96,160 --colour grey
    python benchmarks/cnn_features.py --quick            # 300 validation items, 1000 fit

Writes ``benchmarks/results/cnn_features{,-quick}.md`` and ``.json``; the 1-minute load
average is recorded (the 2 cores are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import recsys_nb  # noqa: F401  (sets the Keras backend)
from recsys_nb import cnn
from recsys_nb.data import is_validation, load_catalog
from recsys_nb.evaluate import (
    CNN_FIT_ITEMS,
    COLOUR,
    PCA_DIM,
    PRODUCT_LABELS,
    cnn_features,
    neighbour_metrics,
)

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (112, 128, 160, 192, 224)
K = 10
BATCH = 32
ROUNDS = 5


def network_ms(size: int, colour: str) -> float:
    """Median ms per image of the jitted network on one batch (after a warm-up)."""
    forward = cnn._forward(cnn.network(size, colour))
    x = np.random.default_rng(0).random((BATCH, size, size, 3), dtype=np.float32)
    forward(x)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        forward(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / BATCH * 1000


def run(sizes, colour: str, quick: bool) -> list[dict]:
    catalog = load_catalog(None)  # ids, labels and image paths; features come from the files
    val = is_validation(catalog.ids, 0.1, 0)
    items, train = catalog.subset(val), catalog.subset(~val)
    fit = train.subset(slice(0, 1000 if quick else CNN_FIT_ITEMS))
    if quick:
        items = items.subset(slice(0, 300))
    labels = {c: items.meta[c].astype(str).to_numpy() for c in PRODUCT_LABELS}
    colours = items.meta[COLOUR].astype(str).to_numpy()
    rows = []
    for size in sizes:
        ms = network_ms(size, colour)
        calls = []
        compute = cnn._compute

        def timed(pixels, *args, _compute=compute, _calls=calls):
            _calls.append(len(pixels))
            return _compute(pixels, *args)

        cnn._compute = timed
        start = time.perf_counter()
        try:
            if colour == "rgb":
                spaces = cnn_features(items, fit, PCA_DIM, size=size)
            else:  # the same rows from greyscale input
                spaces = _grey_spaces(items, fit, size)
        finally:
            cnn._compute = compute
        seconds = time.perf_counter() - start
        row = {
            "size": size,
            "colour": colour,
            "ms_per_image": round(ms, 2),
            "end_to_end_ms": round(seconds / sum(calls) * 1000, 2) if calls else None,
            "load": round(os.getloadavg()[0], 2),
            "n_items": len(items),
            "n_fit": len(fit),
        }
        for name, vectors in spaces.items():
            m = neighbour_metrics(vectors, labels, K, colours)
            short = "cnn" if name == "cnn" else "cnn_pca"
            row[f"{short}_articleType"] = round(m["precision"]["articleType"], 4)
            row[f"{short}_same_colour"] = round(m["same_colour"], 4)
            row[f"{short}_mrr"] = round(m["mrr"], 4)
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
    return rows


def _grey_spaces(items, fit, size: int) -> dict:
    from sklearn.decomposition import PCA

    pooled = cnn.dataset_features(items, size, "grey")
    pca = PCA(PCA_DIM, random_state=0).fit(cnn.dataset_features(fit, size, "grey"))
    return {"cnn": pooled, f"cnn_pca{PCA_DIM}": pca.transform(pooled)}


COLUMNS = (
    ("size", "size"),
    ("colour", "colour"),
    ("ms/img", "ms_per_image"),
    ("end-to-end ms/img", "end_to_end_ms"),
    ("cnn P@10 articleType", "cnn_articleType"),
    ("cnn_pca32 P@10 articleType", "cnn_pca_articleType"),
    ("cnn same_colour@10", "cnn_same_colour"),
    ("cnn_pca32 same_colour@10", "cnn_pca_same_colour"),
    ("cnn MRR", "cnn_mrr"),
    ("load", "load"),
)


def table(rows: list[dict]) -> str:
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = ["" if row.get(key) is None else str(row[key]) for _, key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--colour", choices=cnn.COLOURS, default="rgb")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(table([]), flush=True)
    rows = run(sizes, args.colour, args.quick)
    stem = "cnn_features-quick" if args.quick else "cnn_features"
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / f"{stem}.json"
    old = json.loads(json_path.read_text()) if json_path.is_file() else []
    done = {(r["size"], r["colour"]) for r in rows}
    merged = [r for r in old if (r["size"], r["colour"]) not in done] + rows
    merged.sort(key=lambda r: (r["colour"], r["size"]))
    json_path.write_text(json.dumps(merged, indent=1) + "\n")
    header = (
        "# EfficientNet-Lite0 features: input size against speed and retrieval\n\n"
        f"Products catalogue, validation split ({rows[0]['n_items']} items), PCA fitted on "
        f"{rows[0]['n_fit']} training items; k={K}; 2-core CPU, batch {BATCH}. "
        "`python benchmarks/cnn_features.py`\n\n"
    )
    (RESULTS / f"{stem}.md").write_text(header + table(merged) + "\n")
    print(f"wrote {json_path} and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
