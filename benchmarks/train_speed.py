"""Training speed: the project's Keras-JAX autoencoder against the same model on Keras-torch.

For each default model (Fashion-MNIST 28x28x1, filters 32/64; product photos 64x48x3,
filters 32/64/128; latent 32, binary cross-entropy, Adam, batch 256) and each variant:

* ``keras-jax``: the project's model, ``recsys_nb.model.build_autoencoder`` (DownConv /
  UpConv / OutConv from ``recsys_nb/layers.py``, the micro-batched train step of
  ``recsys_nb.model.Autoencoder``) on Keras' JAX backend;
* ``keras-torch``: the same architecture with Keras' stock Conv2D / Conv2DTranspose on
  Keras' torch backend (``KERAS_BACKEND=torch``, needs the ``bench`` extra: torch);
* ``keras-jax-stock``: stock Conv2D / Conv2DTranspose on Keras-JAX (what we replaced);
* ``keras-torch-fast`` (not with ``--quick``): the project's layers on Keras-torch;
* ``keras-jax-whole`` (not with ``--quick``): the project's layers with Keras' own train
  step on the whole batch (the project before the micro-batched step).

Every variant runs in its own subprocess, twice: a first run with an empty JAX
compilation cache and a second one with that cache warm; each reports its warm-up
(building the model, compiling and running the first train step with ``model.fit``).
The second processes stay alive and are measured in interleaved rounds (variant order
rotated each round) of ``model.fit`` over a fixed number of real batches, so machine load
hits all variants alike; img/s is reported as best and median over rounds, with the
1-minute load average seen during the rounds. After the rounds every variant has
trained the same number of steps on the same batches and reports its validation loss.

Prints a table, saves it under ``benchmarks/results/`` (markdown + JSON) and prints as
its last line one JSON object (``keras_jax_img_s``, ``keras_torch_img_s``, ``ratio`` for
the 28x28 default, ``product_*`` for the product-photo model).

    .venv/bin/python benchmarks/train_speed.py --quick     # under 3 minutes
    .venv/bin/python benchmarks/train_speed.py             # more rounds and variants
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BATCH = 256
TEACHER_DIM = 1280  # EfficientNet-Lite0's pooled features
MARK = "@@bench "

MODELS = {
    "28x28": {
        "title": "Fashion-MNIST 28x28x1, filters 32/64",
        "shape": (28, 28, 1),
        "filters": (32, 64),
    },
    "product": {
        "title": "product photos 64x48x3, filters 32/64/128",
        "shape": (64, 48, 3),
        "filters": (32, 64, 128),
    },
    # make demo's reference recipes (recsys_nb.demo.REFERENCE): their losses and depth
    "28x28-reference": {
        "title": "make demo's Fashion-MNIST recipe (28x28x1)",
        "shape": (28, 28, 1),
        "filters": (32, 64),
        "recipe": "fashion-mnist",
    },
    "product-reference": {
        "title": "make demo's product recipe (64x48, grey)",
        "shape": (64, 48, 1),
        "filters": (32, 64, 128),
        "recipe": "products",
    },
}
# variant: (Keras backend, layers, train step); "micro": recsys_nb's micro-batched train
# step, "keras": Keras' own train step on the whole batch
VARIANTS = {
    "keras-jax": ("jax", "project", "micro"),
    "keras-torch": ("torch", "stock", "keras"),
    "keras-jax-stock": ("jax", "stock", "keras"),
    "keras-torch-fast": ("torch", "project", "keras"),
    "keras-jax-whole": ("jax", "project", "keras"),
}
# (rounds, steps per round, validation images, variants) per mode and model
PLANS = {
    "quick": {
        "28x28": (3, 5, 2048, ["keras-jax", "keras-torch", "keras-jax-stock"]),
        "product": (3, 2, 1024, ["keras-jax", "keras-torch"]),
        "28x28-reference": (3, 3, 1024, ["keras-jax"]),
        "product-reference": (3, 2, 1024, ["keras-jax"]),
    },
    "full": {
        "28x28": (6, 10, 4096, list(VARIANTS)),
        "product": (4, 4, 2048, list(VARIANTS)),
        "28x28-reference": (4, 6, 2048, ["keras-jax", "keras-jax-whole"]),
        "product-reference": (4, 3, 2048, ["keras-jax", "keras-jax-whole"]),
    },
}


# ---------------------------------------------------------------------------- worker


def _say(**msg) -> None:
    print(MARK + json.dumps(msg), flush=True)


def worker(model_key: str, variant: str, train_n: int, val_n: int) -> None:
    """Runs in a subprocess whose environment already selects the Keras backend."""
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    for extra in filter(None, os.environ.get("BENCH_EXTRA_SITE", "").split(os.pathsep)):
        site.addsitedir(extra)  # appended: the interpreter's own torch/keras/numpy come first
    import keras
    import numpy as np

    import recsys_nb
    from recsys_nb import model as model_mod

    backend, layers_kind, step = VARIANTS[variant]
    assert keras.backend.backend() == backend, keras.backend.backend()
    imported = time.perf_counter()

    spec = MODELS[model_key]
    if spec["shape"][:2] == (28, 28):
        data = recsys_nb.load_fashion_mnist("train")
    else:
        data = recsys_nb.load_catalog(channels=spec["shape"][-1])
    train_set, val_set = data.split(0.1, 0)
    order = np.random.default_rng(0).permutation(len(train_set))[:train_n]
    x_train = np.ascontiguousarray(train_set.images[order])
    x_val = np.ascontiguousarray(val_set.images[:val_n])
    loaded = time.perf_counter()

    # "stock": the same architecture with Keras' own layers
    convolutions = "stock" if layers_kind == "stock" else "matmul"
    keras.utils.set_random_seed(0)
    t0 = time.perf_counter()
    net = model_mod.build_autoencoder(
        **_architecture(spec, data, len(train_set)), convolutions=convolutions
    )
    del data, train_set, val_set
    teacher_dim = len(net.outputs) > 1 and int(net.outputs[1].shape[-1])
    if step == "keras":
        net.micro_batch = 0  # Keras' own train step on the whole batch
    cursor = 0

    def fit(steps: int) -> float:
        nonlocal cursor
        idx = (cursor + np.arange(steps * BATCH)) % len(x_train)
        cursor += steps * BATCH
        batch = x_train[idx]
        target = (batch, _teacher_stand_in(len(batch), teacher_dim)) if teacher_dim else batch
        t, cpu = time.perf_counter(), time.process_time()
        net.fit(batch, target, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        fit.cpu_s = time.process_time() - cpu
        return time.perf_counter() - t

    fit(1)
    _say(
        event="ready",
        import_s=imported - started,
        load_s=loaded - imported,
        warmup_s=time.perf_counter() - t0,
        params=int(net.count_params()),
    )
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "train":
            seconds = fit(cmd["steps"])
            n = cmd["steps"] * BATCH
            _say(
                event="trained", seconds=seconds, img_s=n / seconds, cpu_ms_img=fit.cpu_s / n * 1e3
            )
        elif cmd["cmd"] == "eval":
            target = (x_val, _teacher_stand_in(len(x_val), teacher_dim)) if teacher_dim else x_val
            loss = net.evaluate(x_val, target, batch_size=BATCH, verbose=0)
            loss = loss[0] if isinstance(loss, list) else loss
            _say(event="eval", val_loss=float(loss), steps=cursor // BATCH)
        else:
            break


def _architecture(spec: dict, data, n_train: int) -> dict:
    """build_autoencoder's arguments: the plain model of ``spec``, or a reference recipe's
    model as ``recsys_nb.train`` builds it (its depth, decoder, loss terms, schedule). A
    batch of the benchmark is one of the recipe's batches: with the view contrast, its
    halves are taken as the two views."""
    if "recipe" not in spec:
        return {"input_shape": spec["shape"], "filters": spec["filters"], "loss": "bce"}
    import numpy as np

    from recsys_nb.demo import REFERENCE
    from recsys_nb.train import _build_args, _model_config, resolve_recipe

    recipe = resolve_recipe(REFERENCE[spec["recipe"]], data)
    teacher = (np.zeros((1, TEACHER_DIM), "float32"),) if recipe.teacher else None
    return _build_args(_model_config(recipe, data, teacher, n_train))


def _teacher_stand_in(n: int, dim: int):
    """Unit vectors in place of the teacher's features: the same shapes and cost."""
    import numpy as np

    v = np.random.default_rng(n).normal(size=(n, dim)).astype("float32")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- parent


class Worker:
    torch_python = None  # set from --torch-python

    def __init__(self, model_key, variant, cache_dir, train_n, val_n, log):
        backend = VARIANTS[variant][0]
        python = sys.executable
        env = dict(os.environ)
        if backend == "torch" and Worker.torch_python:
            python = Worker.torch_python
            env["BENCH_EXTRA_SITE"] = os.pathsep.join(site.getsitepackages())
        env.update(
            KERAS_BACKEND=backend,
            RECSYS_NB_KERAS_BACKEND=backend,
            JAX_COMPILATION_CACHE_DIR=str(cache_dir),
            # recsys_nb lowers these only when it picks the cache folder itself
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
            PYTHONUNBUFFERED="1",
        )
        self.log = log
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", model_key, variant, str(train_n), str(val_n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
            self.log.write(line)
        raise RuntimeError(f"benchmark worker died (exit {self.proc.wait()}); see {self.log.name}")

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torch_available(python: str | None) -> bool:
    if not python:
        return importlib.util.find_spec("torch") is not None
    return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0


def run_model(model_key, plan, log, tmp, second_run) -> list[dict]:
    rounds, steps, val_n, variants = plan
    train_n = (1 + rounds * steps) * BATCH
    rows, workers = [], {}
    try:
        for variant in variants:
            cache = Path(tmp) / f"{model_key}-{variant}"
            cache.mkdir()
            if variant in second_run:
                cold = Worker(model_key, variant, cache, BATCH, 0, log)
                first = cold.read()
                cold.close()
            warm = Worker(model_key, variant, cache, train_n, val_n, log)
            second = warm.read()
            if variant not in second_run:
                first, second = second, {**second, "warmup_s": None}
            workers[variant] = warm
            rows.append(
                {
                    "model": model_key,
                    "variant": variant,
                    "backend": VARIANTS[variant][0],
                    "layers": VARIANTS[variant][1],
                    "step": VARIANTS[variant][2],
                    "params": first["params"],
                    "import_s": second["import_s"],
                    "warmup_cold_s": first["warmup_s"],
                    "warmup_warm_s": second["warmup_s"],
                    "img_s_rounds": [],
                    "cpu_ms_img_rounds": [],
                }
            )
            print(
                f"  {model_key} {variant}: warm-up {first['warmup_s']:.1f} s cold, "
                f"{_num(second['warmup_s'])} s warm",
                flush=True,
            )
        by_variant = {row["variant"]: row for row in rows}
        loads = []
        for r in range(rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for variant in order:
                loads.append(os.getloadavg()[0])
                reply = workers[variant].ask(cmd="train", steps=steps)
                by_variant[variant]["img_s_rounds"].append(round(reply["img_s"], 1))
                by_variant[variant]["cpu_ms_img_rounds"].append(round(reply["cpu_ms_img"], 3))
            loads.append(os.getloadavg()[0])
            print(
                f"  {model_key} round {r + 1}/{rounds}: "
                + ", ".join(f"{v} {by_variant[v]['img_s_rounds'][-1]:.0f}" for v in variants)
                + " img/s",
                flush=True,
            )
        for variant, w in workers.items():
            reply = w.ask(cmd="eval")
            row = by_variant[variant]
            row["val_loss"] = round(reply["val_loss"], 5)
            row["trained_steps"] = reply["steps"]
            row["val_images"] = val_n
        for row in rows:
            ims = row["img_s_rounds"]
            row["img_s_best"] = round(max(ims), 1)
            row["img_s_median"] = round(statistics.median(ims), 1)
            row["cpu_ms_img"] = round(statistics.median(row["cpu_ms_img_rounds"]), 3)
            row["load_min"], row["load_max"] = round(min(loads), 2), round(max(loads), 2)
    finally:
        for w in workers.values():
            w.close()
    return rows


def fmt_table(rows, torch_missing: bool) -> str:
    head = (
        "| model | variant | backend | conv layers | train step | img/s median | img/s best | "
        "CPU ms/img | warm-up cold s | warm-up warm s | val loss (steps) | load avg (1 min) |\n"
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = []
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['backend']} | {r['layers']} | "
            f"{r['step']} | "
            f"{r['img_s_median']:.0f} | {r['img_s_best']:.0f} | {r['cpu_ms_img']:.2f} | "
            f"{r['warmup_cold_s']:.1f} | "
            f"{_num(r['warmup_warm_s'])} | {r['val_loss']:.4f} ({r['trained_steps']}) | "
            f"{r['load_min']:.1f}-{r['load_max']:.1f} |"
        )
    text = head + "\n".join(lines) + "\n"
    if torch_missing:
        text += "\nkeras-torch rows missing: torch is not installed (see above).\n"
    if any(r["warmup_warm_s"] is None for r in rows):
        text += "\n`-`: started once only (--quick).\n"
    return text


def _num(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(rows) -> dict:
    out = {}
    get = {(r["model"], r["variant"]): r for r in rows}
    for model_key, prefix in (("28x28", ""), ("product", "product_")):
        jax_row, torch_row = get.get((model_key, "keras-jax")), get.get((model_key, "keras-torch"))
        if jax_row:
            out[prefix + "keras_jax_img_s"] = jax_row["img_s_median"]
            out[prefix + "keras_jax_warmup_cold_s"] = round(jax_row["warmup_cold_s"], 2)
            out[prefix + "keras_jax_warmup_warm_s"] = round(jax_row["warmup_warm_s"], 2)
            out[prefix + "keras_jax_val_loss"] = jax_row["val_loss"]
            out[prefix + "keras_jax_cpu_ms_img"] = jax_row["cpu_ms_img"]
        if torch_row:
            out[prefix + "keras_torch_img_s"] = torch_row["img_s_median"]
            out[prefix + "keras_torch_warmup_s"] = round(torch_row["warmup_cold_s"], 2)
            out[prefix + "keras_torch_val_loss"] = torch_row["val_loss"]
            out[prefix + "keras_torch_cpu_ms_img"] = torch_row["cpu_ms_img"]
        stock = get.get((model_key, "keras-jax-stock"))
        if stock:
            out[prefix + "keras_jax_stock_img_s"] = stock["img_s_median"]
        out[prefix + "ratio"] = (
            round(jax_row["img_s_median"] / torch_row["img_s_median"], 3)
            if jax_row and torch_row
            else None
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds/variants, < 3 min")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma list of {', '.join(MODELS)}",
    )
    parser.add_argument("--variants", help="comma list (default: the mode's plan)")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results")
    parser.add_argument(
        "--torch-python",
        default=os.environ.get("BENCH_TORCH_PYTHON"),
        help="a Python with torch + keras for the torch rows, if this venv has no torch "
        "(this venv's packages are appended to its path); env BENCH_TORCH_PYTHON",
    )
    args = parser.parse_args()

    mode = "quick" if args.quick else "full"
    Worker.torch_python = args.torch_python
    have_torch = torch_available(args.torch_python)
    if not have_torch:
        print(
            f"torch is not installed in {args.torch_python or sys.prefix}: the keras-torch "
            "rows are skipped. "
            "Install the bench extra with `make bench` (pip install -e '.[bench]', i.e. "
            "torch==2.13.0) and run again.",
            flush=True,
        )
    started = time.perf_counter()
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / "train_speed.log"
    with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="jaxcache-") as tmp:
        for model_key in args.models.split(","):
            rounds, steps, val_n, variants = PLANS[mode][model_key]
            if args.variants:
                variants = args.variants.split(",")
            if not have_torch:
                variants = [v for v in variants if VARIANTS[v][0] != "torch"]
            print(
                f"{MODELS[model_key]['title']}: {', '.join(variants)}; "
                f"{rounds} rounds of {steps} steps x {BATCH}",
                flush=True,
            )
            # --quick starts keras-jax-stock and keras-torch-fast once (no cache-warm run)
            second_run = set(variants) if mode == "full" else {"keras-jax", "keras-torch"}
            plan = (rounds, steps, val_n, variants)
            rows += run_model(model_key, plan, log, tmp, second_run)

    from importlib.metadata import version

    info = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "mode": mode,
        "batch_size": BATCH,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "keras": version("keras"),
        "jax": version("jax"),
        "torch": _torch_version(args.torch_python) if have_torch else None,
    }
    table = fmt_table(rows, not have_torch)
    result = summary(rows)
    text = (
        f"# Training speed ({mode}, {info['date']})\n\n"
        f"{info['cpu']}, {info['cpus']} CPUs; keras {info['keras']}, jax {info['jax']}, "
        f"torch {info['torch']}; batch {BATCH}; img/s over interleaved rounds of `model.fit`; "
        "warm-up = build + compile + first step in a fresh process (cold: empty JAX "
        "compilation cache; warm: second process, cache filled by the first); val loss after "
        "the same number of steps on the same batches. CPU ms/img: process CPU time (all "
        "threads, spin-waits included) per image, median over rounds; less sensitive to other "
        "load than img/s. Load avg includes this benchmark (about 2 when otherwise idle).\n\n"
        f"{table}\n"
        f"28x28 Keras-JAX / Keras-torch: {result.get('ratio')}; "
        f"product: {result.get('product_ratio')}\n"
    )
    print()
    print(text)
    if not args.no_save:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        payload = {"info": info, "rows": rows, "summary": result}
        for name in (f"train_speed-{mode}-{stamp}", f"latest-{mode}"):
            (RESULTS / f"{name}.md").write_text(text)
            (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        print(f"saved benchmarks/results/train_speed-{mode}-{stamp}.md/.json")
    print(json.dumps(result))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _torch_version(python: str | None) -> str | None:
    out = subprocess.run(
        [python or sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
