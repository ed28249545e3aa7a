"""The comparison view linked to the latent map, end to end in JupyterLab (Chromium).

A notebook shows a ``LatentExplorer`` map (lasso tool on) and a ``RecommenderWidget``
comparing the tiny model with HOG, linked by ``w.link(explorer)``. The driver lassoes the
middle of the map, checks that the widget's grid shows the selection, clicks its first
product and waits for both rows' pictures; the kernel's side (the subset, the rows, the
rings on the map) is read from a second cell and checked against the stores.

``python tests/ui/test_jupyterlab_compare.py --model models/products --catalog DIR
--compare cnn hog --docs docs/compare.png`` takes README's screenshot the same way.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from test_jupyterlab import ARTIFACTS, JupyterLab, drive, write_notebook

import recsys_nb
from recsys_nb.recommend import FeatureStore

K = 5

STATE_CELL = (
    "import json\n"
    "print('STATE', json.dumps({'subset': w.subset, 'map': explorer.selected_ids,"
    " 'query': w.selected, 'rings': sorted(explorer.highlighted),"
    " 'star': explorer._query_id, 'rows': w.compared}))"
)


def widget_cell(model: str, catalog: str, compare: list[str], k: int, method: str) -> str:
    return (
        "import recsys_nb\n"
        f"store = recsys_nb.MemoryStore.from_model({model!r}, {catalog!r})\n"
        f"w = recsys_nb.RecommenderWidget(store=store, compare={compare!r}, k={k})\n"
        f"explorer = recsys_nb.LatentExplorer.from_store(store, method={method!r})\n"
        "explorer.figure.layout.dragmode = 'lasso'\n"
        "link = w.link(explorer)\n"
        "display(explorer.widget)\n"
        "w"
    )


def run_compare(
    root: Path, cell: str, k: int, shot: Path | None = None, wait_s: float = 60
) -> dict:
    """Drive the notebook (see the module doc); what the page showed, and the kernel's state
    before the lasso, after it and after the click."""
    write_notebook(root / "compare.ipynb", [cell, STATE_CELL])
    with JupyterLab(root) as lab:
        seen = drive(
            {
                "mode": "compare",
                "url": lab.url("compare.ipynb"),
                "k": k,
                "cells": 1,
                "timeout_ms": int(wait_s * 1000),
                "viewport": {"width": 1400, "height": 1100},
                "screenshot": str(ARTIFACTS / "jupyterlab-compare.png"),
                "widget_shot": str(shot) if shot else None,
            },
            lab,
            lab.home,
            timeout=wait_s * 5,
        )
    for key in ("before", "selected", "after"):
        found = re.search(r"STATE (\{.*\})", seen[key])
        assert found, f"no kernel state in {seen[key]!r}"
        seen[key] = json.loads(found.group(1))
    widget_errors = [m for m in seen["console"] if "rnb" in m or "widget.js" in m]
    assert widget_errors == [], widget_errors
    return seen


def test_compare_view_linked_to_the_map(browser_ready, tiny_product_model, small_catalog, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    model = str(tiny_product_model.path)
    seen = run_compare(tmp_path, widget_cell(model, str(small_catalog), ["hog"], K, "pca"), K)
    store = recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)
    hog = FeatureStore("hog", small_catalog)

    # Before: the whole catalogue, nothing compared yet.
    assert seen["before"]["subset"] is None and seen["before"]["rows"] == []

    # The lasso: the kernel's subset is the map's selection, and the grid shows it.
    chosen = seen["selected"]["subset"]
    assert chosen and chosen == seen["selected"]["map"]
    assert 0 < len(chosen) < len(store.ids)
    assert seen["grid"] == chosen[:24], "the grid lists the selection, catalogue order"
    assert seen["status"].startswith(f"{len(chosen)} product")

    # The click: both rows answer the same query as the stores do, marked as the labels say.
    query = seen["clicked"]
    assert query == chosen[0] and seen["after"]["query"] == query
    assert [r["name"] for r in seen["rows"]] == [store.model.name, "hog"]
    for row, answer in zip(seen["rows"], (store, hog), strict=True):
        assert row["ids"] == answer.recommend(query, k=K)["id"].tolist(), row["name"]
    meta, labels = store.meta, ("articleType", "baseColour")
    for row in seen["rows"]:
        for item, marks in zip(row["ids"], row["same"], strict=True):
            assert marks == [c for c in labels if meta.loc[item, c] == meta.loc[query, c]]
        assert row["shares"][0] == f"same type {sum('articleType' in m for m in row['same'])}/{K}"
    assert [r["name"] for r in seen["after"]["rows"]] == [r["name"] for r in seen["rows"]]

    # ...and the map rings the query's recommendations and stars the query.
    assert seen["after"]["rings"] == sorted(seen["rows"][0]["ids"])
    assert seen["after"]["star"] == query
    assert (ARTIFACTS / "jupyterlab-compare.png").stat().st_size > 10_000


def main() -> None:
    """README's screenshot of the comparison view (see the module doc)."""
    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/products")
    p.add_argument("--catalog", default=str(recsys_nb.data_root() / "fashion-products"))
    p.add_argument("--compare", nargs="+", default=["cnn", "hog"])
    p.add_argument("-k", type=int, default=8)
    p.add_argument("--docs", default="docs/compare.png")
    args = p.parse_args()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Embed first (the CNN's features of a whole catalogue take minutes; then cached) and
    # project (UMAP, cached), so that the notebook's first cell only reads caches.
    model = str(Path(args.model).resolve())
    store = recsys_nb.MemoryStore.from_model(model, args.catalog)
    recsys_nb.LatentExplorer.from_store(store)
    for spec in args.compare:
        if spec not in FeatureStore.KINDS:
            recsys_nb.MemoryStore.from_model(spec, args.catalog)
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "compare.png"
        cell = widget_cell(model, args.catalog, args.compare, args.k, "umap")
        seen = run_compare(Path(tmp), cell, args.k, shot, wait_s=180)
        with Image.open(shot) as img:
            small = img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
            small.save(args.docs, optimize=True)
    print(json.dumps({"query": seen["clicked"], "rows": seen["rows"]}, indent=1))
    print(f"screenshot: {args.docs}")


if __name__ == "__main__":
    main()
