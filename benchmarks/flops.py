"""Arithmetic against this CPU's peak: how fast make demo's work could go (issue 20).

For each model of ``benchmarks/train_speed.py`` (the plain 28x28 and product-photo
autoencoders, make demo's two reference recipes, built by the same code as
``recsys_nb.train``) and for EfficientNet-Lite0 at 160 pixels (the evaluation's CNN rows):

* FLOPs per image as XLA counts them: the compiled whole-batch train step (forward,
  backward, loss terms and Adam; 256 images) divided by 256, the inference pass and the
  encoder alone the same way (the micro-batched step does the same arithmetic in chunks);
* img/s of the train step the package uses (the micro-batched one, timed with
  ``model.fit`` after a warm-up, median of three rounds) and of the CNN;
* the GFLOPS that makes, against the machine's peak: a jitted 2048 x 2048 x 2048 float32
  matmul on every core (the fastest dense arithmetic XLA reaches here; bfloat16 for
  reference).

Then make demo's work (``recsys_nb.demo.REFERENCE``): every image through every network in
each stage (training epochs, validation passes, embedding the catalogue, the CNN's
features of the evaluated and PCA-fitting items) times its FLOPs, and the seconds that
takes at the peak and at the measured rates, beside the stages' measured times in
``results/demo_time.json`` when it exists. Prints a table and saves
``results/flops.md`` and ``.json``.

    .venv/bin/python benchmarks/flops.py      # about 2 minutes on an idle 2-core machine
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BATCH = 256
PEAK_N = 2048


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def matmul_peak() -> dict:
    """Best GFLOPS of a jitted square matmul, float32 and bfloat16 (float32 accumulation)."""
    import jax
    import jax.numpy as jnp

    out = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        a = jnp.ones((PEAK_N, PEAK_N), dtype)
        f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
        f(a, a).block_until_ready()
        best = float("inf")
        for _ in range(10):
            t = time.perf_counter()
            f(a, a).block_until_ready()
            best = min(best, time.perf_counter() - t)
        out[jnp.dtype(dtype).name] = 2 * PEAK_N**3 / best / 1e9
    return out


def _forward_flops(model, x) -> float:
    import jax

    run = jax.jit(lambda t, n, v: model.stateless_call(t, n, v, training=False)[0])
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    return _flops(run.lower(trainable, frozen, x).compile()) / len(x)


def autoencoder_row(title: str, recipe, data) -> dict:
    """FLOPs per image and the micro-batched step's img/s for ``recipe`` on ``data``."""
    import jax
    import keras
    import numpy as np

    from recsys_nb.model import build_autoencoder
    from recsys_nb.train import _build_args, _model_config, resolve_recipe

    recipe = resolve_recipe(recipe, data)
    train_set, _ = data.split(recipe.val_fraction, recipe.seed)
    keras.utils.set_random_seed(0)
    net = build_autoencoder(**_build_args(_model_config(recipe, data, None, len(train_set))))
    x = np.ascontiguousarray(train_set.images[: 8 * BATCH])
    batch = x[:BATCH]
    # the package's own (micro-batched) step, as make demo trains: warm up, then time it
    net.fit(x[: 2 * BATCH], x[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    rates = []
    for _ in range(3):
        t = time.perf_counter()
        net.fit(x, x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        rates.append(len(x) / (time.perf_counter() - t))
    # FLOPs: Keras' whole-batch step (the same arithmetic in one call, no loop for XLA's
    # cost analysis to count once)
    net.micro_batch = 0
    state = (
        [v.value for v in net.trainable_variables],
        [v.value for v in net.non_trainable_variables],
        [v.value for v in net.optimizer.variables],
        [v.value for v in net.metrics_variables],
    )
    # a new function: jax.jit(net.train_step) would find fit's trace of the same method
    step = jax.jit(lambda s, d: net.train_step(s, d)).lower(state, (batch, batch)).compile()
    train_flops = _flops(step) / BATCH
    forward = _forward_flops(net, batch)
    encode = _forward_flops(net.get_layer("encoder"), batch)
    return {
        "model": title,
        "train_mflop_img": train_flops / 1e6,
        "forward_mflop_img": forward / 1e6,
        "encoder_mflop_img": encode / 1e6,
        "img_s": statistics.median(rates),
    }


def cnn_row() -> dict:
    import numpy as np

    from recsys_nb import cnn

    net = cnn.network(cnn.INPUT_SIZE, "rgb")
    x = np.random.default_rng(0).random((cnn.BATCH_SIZE, cnn.INPUT_SIZE, cnn.INPUT_SIZE, 3))
    x = x.astype("float32")
    flops = _forward_flops(net, x)
    forward = cnn._forward(net)  # what the evaluation runs, batch by batch
    forward(x)
    rates = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(8):
            forward(x)
        rates.append(8 * len(x) / (time.perf_counter() - t))
    return {
        "model": f"EfficientNet-Lite0 at {cnn.INPUT_SIZE} (inference)",
        "train_mflop_img": None,
        "forward_mflop_img": flops / 1e6,
        "encoder_mflop_img": None,
        "img_s": statistics.median(rates),
    }


def demo_work(rows: dict, counts: dict) -> list[dict]:
    """make demo's stages as (images x FLOPs per image) and their least times."""
    from recsys_nb.demo import REFERENCE
    from recsys_nb.evaluate import CNN_FIT_ITEMS

    cnn = rows["cnn"]
    stages = []
    for name, key in (("fashion-mnist", "fm"), ("products", "products")):
        recipe, row, n = REFERENCE[name], rows[key], counts[name]
        views = 2 if recipe.contrast else 1
        trained = recipe.epochs * views * n["train"]
        validated = recipe.epochs * n["val"]
        train_flop = trained * row["train_mflop_img"] + validated * row["forward_mflop_img"]
        train_s = trained / row["img_s"] + validated * row["forward_mflop_img"] / (
            row["train_mflop_img"] * row["img_s"]
        )
        stages.append(
            {
                "stage": f"{name}: train",
                "images": f"{recipe.epochs} epochs x {views * n['train']:,} + {n['val']:,} val",
                "tflop": train_flop / 1e6,
                "at_measured_s": train_s,
            }
        )
        cnn_items = n["evaluated"] + min(CNN_FIT_ITEMS, n["train"])
        eval_flop = n["catalogue"] * row["encoder_mflop_img"] + cnn_items * cnn["forward_mflop_img"]
        stages.append(
            {
                "stage": f"{name}: embed the catalogue and evaluate",
                "images": f"{n['catalogue']:,} encoded, {cnn_items:,} through the CNN",
                "tflop": eval_flop / 1e6,
                "at_measured_s": cnn_items / cnn["img_s"],
            }
        )
    return stages


def _measured_stages() -> dict:
    path = RESULTS / "demo_time.json"
    if not path.is_file():
        return {}
    runs = json.loads(path.read_text())
    times: dict[str, list[float]] = {}
    for run in runs:
        for stage, seconds in (run.get("stages") or {}).items():
            times.setdefault(stage, []).append(float(seconds))
    return {stage: (min(v), max(v)) for stage, v in times.items()}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from train_speed import _cpu_name  # benchmarks/ is this script's folder

    import recsys_nb
    from recsys_nb.data import load_catalog
    from recsys_nb.demo import REFERENCE
    from recsys_nb.recipe import Recipe

    peak = matmul_peak()
    print(f"matmul peak: float32 {peak['float32']:.0f} GFLOPS, bfloat16 {peak['bfloat16']:.0f}")
    fashion = recsys_nb.load_fashion_mnist("train")
    grey = load_catalog(channels=1)
    rgb = load_catalog(channels=3)
    models = {
        "plain28": ("plain 28x28x1, filters 32/64", Recipe(dataset="fashion-mnist"), fashion),
        "plain_product": ("plain 64x48x3, filters 32/64/128", Recipe(dataset="products"), rgb),
        "fm": ("make demo's Fashion-MNIST recipe", REFERENCE["fashion-mnist"], fashion),
        "products": ("make demo's product recipe (grey)", REFERENCE["products"], grey),
    }
    rows = {}
    for key, (title, recipe, data) in models.items():
        rows[key] = autoencoder_row(title, recipe, data)
        print(json.dumps(rows[key]), flush=True)
    rows["cnn"] = cnn_row()
    print(json.dumps(rows["cnn"]), flush=True)
    for row in rows.values():
        flop = row["train_mflop_img"] or row["forward_mflop_img"]
        row["gflops"] = flop * row["img_s"] / 1e3
        row["share_of_peak"] = row["gflops"] / peak["float32"]

    counts = {}
    for name, data, evaluated in (
        ("fashion-mnist", fashion, len(recsys_nb.load_fashion_mnist("test"))),
        ("products", grey, None),
    ):
        recipe = REFERENCE[name]
        train_set, val_set = data.split(recipe.val_fraction, recipe.seed)
        counts[name] = {
            "train": len(train_set),
            "val": len(val_set),
            "catalogue": evaluated or len(data),
            "evaluated": evaluated or len(val_set),
        }
    stages = demo_work(rows, counts)
    measured = _measured_stages()
    for stage in stages:
        stage["at_peak_s"] = stage["tflop"] * 1e3 / peak["float32"]
        stage["measured_s"] = measured.get(stage["stage"])

    lines = [
        "# make demo's arithmetic against this CPU's peak",
        "",
        f"{_cpu_name()}, {os.cpu_count()} cores; matmul peak (jitted {PEAK_N}^3, all cores): "
        f"float32 {peak['float32']:.0f} GFLOPS, bfloat16 {peak['bfloat16']:.0f}. "
        "`python benchmarks/flops.py`",
        "",
        "| network | train MFLOP/img | forward MFLOP/img | img/s (train step, or inference) "
        "| GFLOPS | share of float32 peak |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        train = "-" if row["train_mflop_img"] is None else f"{row['train_mflop_img']:.1f}"
        lines.append(
            f"| {row['model']} | {train} | {row['forward_mflop_img']:.1f} | {row['img_s']:,.0f} "
            f"| {row['gflops']:.0f} | {row['share_of_peak']:.0%} |"
        )
    lines += [
        "",
        "| make demo stage | images | TFLOP | s at float32 peak | s at the measured rates* "
        "| measured s (demo_time.json) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in stages:
        seen = "-" if not s["measured_s"] else "{:.0f}-{:.0f}".format(*s["measured_s"])
        lines.append(
            f"| {s['stage']} | {s['images']} | {s['tflop']:.1f} | {s['at_peak_s']:.0f} "
            f"| {s['at_measured_s']:.0f} | {seen} |"
        )
    total_peak = sum(s["at_peak_s"] for s in stages)
    total_rates = sum(s["at_measured_s"] for s in stages)
    lines += [
        "",
        "\\* training: the images at the train step's measured img/s (validation at the same "
        "FLOP rate); evaluation: the CNN's images at its measured rate (the autoencoder's "
        "encoding, the baselines and the image decoding not counted).",
        "",
        f"All four stages: {total_peak:.0f} s at the float32 peak, {total_rates:.0f} s at the "
        "measured rates; installs and start (30-70 s) come on top.",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flops.md").write_text(table + "\n")
    payload = {"peak_gflops": peak, "networks": rows, "demo": stages, "counts": counts}
    (RESULTS / "flops.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
